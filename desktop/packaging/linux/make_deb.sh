#!/usr/bin/env bash
# Pack a PyInstaller folder into a .deb: make_deb.sh FOLDER VERSION OUTDIR
#   /opt/moodroll/                 the folder (moodroll, moodroll-app, _internal/)
#   /usr/bin/moodroll{,-app}       symlinks (PyInstaller's bootloader resolves them to /opt)
#   /usr/share/applications/moodroll.desktop, /usr/share/icons/hicolor/*/apps/moodroll.png
# No maintainer scripts: dpkg's triggers refresh the desktop and icon caches, and a remove
# takes back exactly the files listed here (the program never writes under /opt).
set -euo pipefail
SRC="$1"; VERSION="$2"; OUT="$3"
HERE="$(cd "$(dirname "$0")" && pwd)"
ICONS="$HERE/../../../assets/icons"
ROOT="$(mktemp -d)"; trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/opt" "$ROOT/usr/bin" "$ROOT/usr/share/applications" "$ROOT/DEBIAN" \
         "$ROOT/usr/share/doc/moodroll" "$ROOT/usr/share/icons/hicolor/scalable/apps"
cp -a "$SRC" "$ROOT/opt/moodroll"
for exe in moodroll moodroll-app; do
  [ -x "$ROOT/opt/moodroll/$exe" ] && ln -s "/opt/moodroll/$exe" "$ROOT/usr/bin/$exe"
done
install -m 644 "$HERE/moodroll.desktop" "$ROOT/usr/share/applications/moodroll.desktop"
for s in 16 24 32 48 64 128 256 512; do
  mkdir -p "$ROOT/usr/share/icons/hicolor/${s}x${s}/apps"
  install -m 644 "$ICONS/moodroll-$s.png" "$ROOT/usr/share/icons/hicolor/${s}x${s}/apps/moodroll.png"
done
install -m 644 "$ICONS/moodroll.svg" "$ROOT/usr/share/icons/hicolor/scalable/apps/moodroll.svg"
printf 'Moodroll %s, built from %s. Installing and building: docs/install.md in the source.\n' \
  "$VERSION" "$(git rev-parse --short HEAD 2>/dev/null || echo source)" > "$ROOT/usr/share/doc/moodroll/README"
chmod -R u+rwX,go+rX,go-w "$ROOT"
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
# The newest glibc symbol any file in the bundle needs (the build machine's libpython/libstdc++ set it).
GLIBC=$(find "$SRC" -type f \( -name '*.so*' -o -perm -u+x \) -exec objdump -T {} + 2>/dev/null \
        | grep -o 'GLIBC_2\.[0-9]*' | sed 's/GLIBC_//' | sort -t. -k2 -n -u | tail -1 || true)
GLIBC="${GLIBC:-2.28}"
# Depends: the ALSA and JACK client libraries python-rtmidi talks to, PortAudio (the preview
# sound), and what Qt's xcb/wayland plugins load from the system (the spec leaves X11, GL,
# fonts, D-Bus and ALSA to the system; it bundles Qt itself).
cat > "$ROOT/DEBIAN/control" <<CTRL
Package: moodroll
Version: $VERSION
Section: sound
Priority: optional
Architecture: amd64
Maintainer: Moodroll developers <moodroll@localhost>
Installed-Size: $SIZE
Depends: libc6 (>= $GLIBC), libasound2 | libasound2t64, libjack-jackd2-0 | libjack0, libegl1, libgl1,
 libfontconfig1, libfreetype6, libdbus-1-3, libglib2.0-0 | libglib2.0-0t64, libxkbcommon0,
 libxkbcommon-x11-0, libx11-xcb1, libxcb1, libxcb-cursor0, libxcb-icccm4, libxcb-image0,
 libxcb-keysyms1, libxcb-randr0, libxcb-render-util0, libxcb-shape0, libxcb-xfixes0, libxcb-xkb1,
 libportaudio2, libwayland-client0, libwayland-cursor0, libwayland-egl1
Recommends: jackd2 | pipewire-jack
Description: picture or webcam to emotion-matched piano MIDI, streamed into your DAW
 Moodroll turns a picture, or a live webcam, into piano MIDI whose emotion
 (valence and arousal) matches it, and streams it into a DAW through a virtual
 MIDI port in the DAW's tempo, or exports a .mid file. The package ships the
 desktop app (moodroll-app), the command line (moodroll) and the trained model;
 it runs on the CPU and needs no GPU.
CTRL
mkdir -p "$OUT"
DEB="$OUT/moodroll_${VERSION}_amd64.deb"
dpkg-deb --root-owner-group -Zxz -z1 --build "$ROOT" "$DEB" >/dev/null
echo "make_deb: $DEB ($(du -h "$DEB" | cut -f1), installs $((SIZE / 1024)) MiB)"
