#!/usr/bin/env bash
# Pack Moodroll.app into a compressed disk image: make_dmg.sh APP VERSION OUTDIR
# The image holds the app and an /Applications link (drag to install). CoreMIDI creates
# virtual ports natively, so `Moodroll` appears as a MIDI input in Live/Logic/Reaper with no
# extra driver. The build is unsigned: first start with right-click > Open (docs/install.md);
# signing/notarisation need an Apple Developer ID (codesign + notarytool), not done here.
set -euo pipefail
APP="$1"; VERSION="$2"; OUT="$3"
STAGE="$(mktemp -d)"; trap 'rm -rf "$STAGE"' EXIT
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
codesign --force --deep --sign - "$STAGE/$(basename "$APP")" 2>/dev/null || true  # ad-hoc: Apple silicon needs a signature
DMG="$OUT/Moodroll-$VERSION.dmg"
rm -f "$DMG"
hdiutil create -volname "Moodroll $VERSION" -srcfolder "$STAGE" -ov -format UDZO "$DMG" >/dev/null
echo "make_dmg: $DMG ($(du -h "$DMG" | cut -f1))"
