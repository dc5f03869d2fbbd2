#!/usr/bin/env bash
# Build Moodroll's installers for this OS, output in dist/ (docs/install.md):
#
#     bash desktop/packaging/build.sh
#
# 1. a clean build venv (build/pkgvenv): pyproject's engine + desktop deps with the CPU
#    onnxruntime, and PyInstaller; never torch (checked);
# 2. PyInstaller (moodroll.spec) -> dist/moodroll/ with the `moodroll` and `moodroll-app`
#    executables and the shipped model; a smoke run of the frozen `moodroll generate`;
# 3. the OS's packages: Linux dist/moodroll_<v>_amd64.deb + dist/moodroll-<v>-linux-x86_64.tar.gz,
#    Windows dist/Moodroll-<v>-setup.exe (Inno Setup), macOS dist/Moodroll-<v>.dmg.
# Heavy (minutes, all cores): runs under `nice`. Environment: PYTHON (3.11+, a shared libpython),
# MOODROLL_PKGVENV (venv folder), MOODROLL_PACKAGE_APP=0 (CLI only).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=desktop/packaging
PY="${PYTHON:-python3}"
VENV="${MOODROLL_PKGVENV:-build/pkgvenv}"
NICE=""; command -v nice >/dev/null && NICE="nice -n 10"
case "$(uname -s)" in
  Linux*) OS=linux; VPY="$VENV/bin/python" ;;
  Darwin*) OS=macos; VPY="$VENV/bin/python" ;;
  MINGW*|MSYS*|CYGWIN*) OS=windows; VPY="$VENV/Scripts/python.exe" ;;
  *) echo "build.sh: unsupported OS $(uname -s)" >&2; exit 2 ;;
esac
step() { echo "== $*"; }

mkdir -p build
if command -v flock >/dev/null; then  # two builds at once would delete each other's dist/moodroll
  exec 9>build/.packaging.lock; flock -n 9 || { echo "build.sh: another build is running" >&2; exit 1; }
fi

step "build venv $VENV"
if [ ! -x "$VPY" ]; then "$PY" -m venv "$VENV"; "$VPY" -m pip install -q --upgrade pip; fi
"$VPY" "$HERE/requirements.py" > build/pkg-requirements.txt
if ! cmp -s build/pkg-requirements.txt "$VENV/.moodroll-requirements"; then
  $NICE "$VPY" -m pip install -q -r build/pkg-requirements.txt
  cp build/pkg-requirements.txt "$VENV/.moodroll-requirements"
fi
"$VPY" - <<'PYEOF'
import importlib.util, sys
bad = [m for m in ("torch", "torchvision", "timm", "onnx", "matplotlib", "cv2") if importlib.util.find_spec(m)]
gpu = [d for d in __import__("importlib.metadata").metadata.distributions()
       if d.metadata["Name"].lower() == "onnxruntime-gpu"]
if bad or gpu:
    sys.exit(f"build.sh: the build venv must not hold {bad + ['onnxruntime-gpu'] * bool(gpu)}; delete it and rerun")
PYEOF
VERSION=$("$VPY" -c "import tomllib; print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")

step "PyInstaller -> dist/moodroll (version $VERSION)"
rm -rf dist/moodroll dist/Moodroll.app
MOODROLL_VERSION="$VERSION" $NICE "$VPY" -m PyInstaller --noconfirm --log-level WARN \
  --distpath dist --workpath build/pyinstaller "$HERE/moodroll.spec"
EXE=dist/moodroll/moodroll; [ "$OS" = windows ] && EXE=dist/moodroll/moodroll.exe
if [ "$OS" = linux ] && [ -f desktop/app.py ] && [ "${MOODROLL_PACKAGE_APP:-1}" != 0 ]; then
  ln -sfn moodroll dist/moodroll/moodroll-app  # moodroll_main.py runs the app when started by this name
fi
# The bundle's module list (inside the executables' archives), for tests/test_packaging.py.
"$VPY" -m PyInstaller.utils.cliutils.archive_viewer --list --recursive --brief "$EXE" \
  | sed -n 's/^ *//; /^[A-Za-z_][A-Za-z0-9_.]*$/p' | sort -u > dist/moodroll-modules.txt
if [ "$OS" = linux ] && command -v strip >/dev/null && command -v file >/dev/null; then
  # Symbol tables and debug info: the interpreter (pyenv/source builds carry ~20 MB of it), Qt's
  # bindings and ICU, tokenizers, yaml (~13 MB in all). Left alone: the libraries auditwheel
  # grafted or patched with patchelf (*.libs/, numpy, cv2, onnxruntime), which strip can break.
  find dist/moodroll/_internal -type f \( -name '*.so' -o -name '*.so.*' \) \
      ! -path '*.libs/*' ! -path '*/numpy/*' ! -path '*/cv2/*' ! -path '*/onnxruntime/*' -print0 |
    while IFS= read -r -d '' f; do
      if file -b "$f" | grep -q -e 'not stripped' -e 'with debug_info'; then strip --strip-unneeded "$f"; fi
    done
fi

step "smoke: frozen moodroll generate"
MOODROLL_DEVICE=cpu "$EXE" generate assets/examples/sunrise.jpg -o build/smoke.mid --bars 2 --seed 1
"$VPY" -c "import mido, sys; m = mido.MidiFile('build/smoke.mid'); n = sum(x.type == 'note_on' for x in m); sys.exit(0 if n else 'no notes'); " \
  && echo "smoke: build/smoke.mid is valid MIDI"

step "packages for $OS"
case "$OS" in
  linux)
    bash "$HERE/linux/make_deb.sh" dist/moodroll "$VERSION" dist
    tar -C dist -czf "dist/moodroll-$VERSION-linux-x86_64.tar.gz" moodroll ;;
  windows)
    ISCC="${ISCC:-iscc}"; command -v "$ISCC" >/dev/null || ISCC="/c/Program Files (x86)/Inno Setup 6/ISCC.exe"
    "$ISCC" //Q "//DAppVersion=$VERSION" "//DSourceDir=$(cd dist/moodroll && pwd -W)" \
      "//DRepoDir=$(pwd -W)" "//O$(cd dist && pwd -W)" "$HERE/windows/moodroll.iss" ;;
  macos)
    bash "$HERE/macos/make_dmg.sh" dist/Moodroll.app "$VERSION" dist ;;
esac

step "sizes"
du -sh dist/moodroll
"$VPY" "$HERE/sizes.py" dist/moodroll
ls -l dist | grep -E '\.(deb|tar\.gz|exe|dmg)$' || true
