"""engine.model.quantize: the int8 decoder bundle loads and verifies, keeps its format, stays
within a logit bound of float32 on a seeded stream, and generates valid, seeded music."""
import pytest

onnx = pytest.importorskip("onnx")  # writing needs the onnx package (the training extra); CI has it

from engine.model.bundle import load_bundle  # noqa: E402
from engine.model.quantize import QUANTIZATION, logit_error, quantize_bundle  # noqa: E402
from engine.model.generator import Condition, MusicGenerator  # noqa: E402
from engine.model.runtime import Runtime  # noqa: E402
from engine.model.sampling import SamplingOptions  # noqa: E402
from tests.test_runtime import random_bundle2  # noqa: E402,F401


@pytest.mark.parametrize("which", ["format1", "format2"])
def test_int8_bundle_loads_and_stays_close(random_bundle, random_bundle2, tmp_path, which):
    src = random_bundle if which == "format1" else random_bundle2
    out = quantize_bundle(src, tmp_path / "int8")
    b = load_bundle(out)  # the manifest was rewritten
    assert b.format == load_bundle(src).format and b.config["decoder"]["quantization"] == QUANTIZATION
    ops = {n.op_type for n in onnx.load(str(out / "decoder_step.onnx")).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul"}
    rf, rq = Runtime(load_bundle(src), device="cpu", threads=1), Runtime(b, device="cpu", threads=1)
    err = logit_error(rf, rq, n=64)
    # measured on this tiny random model: max 0.125 of a logit range of 1.94 (6 %); int8 weights and per-step
    # activation quantisation must stay within 10 % of the range (shipped model: 0.32 of 29.8, 1 %)
    assert 0 < err["max_abs"] <= 0.1 * err["logit_range"]
    opts = SamplingOptions(seed=3, guidance=2.0)
    a = MusicGenerator(b, opts, condition=Condition(6, 4), runtime=rq).generate(100)
    assert a == MusicGenerator(b, opts, condition=Condition(6, 4), runtime=rq).generate(100)
    assert b.tokenizer.groups.bar in a
