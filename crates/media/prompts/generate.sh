#!/bin/sh
# Makes Switchboard's default prompts as 8 kHz mono G.711 μ-law WAV files (telephony's own
# format: half the size of 16-bit PCM and exactly what goes on the wire).
#
#   crates/media/prompts/generate.sh [OUT_DIR]      (default: crates/media/prompts/en)
#
# The English set in crates/media/prompts/en is made with this script and built into the
# binary (media::prompts::built_in_prompt); rerun it after changing a text below.
#
# 1. Spoken prompts with espeak-ng + sox (Debian packages espeak-ng and sox; installed with
#    apt-get when missing and we are root). The voice is espeak's default English.
# 2. If that is impossible, the pure-Rust tone fallback (media::prompts::write_tone_prompts):
#    digits are counted out in beeps, other prompts are short distinct melodies.
# OUT_DIR/SOURCE says which one made the files.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/en"}
mkdir -p "$out"

# name|text, kept in step with media::prompts::DEFAULT_PROMPTS (except moh, made with sox synth below).
prompts='welcome|Welcome to Switchboard.
menu|For sales, press 1. For support, press 2. To leave a message, press 3.
please-hold|Please hold, an agent will be with you shortly.
your-position-is|Your position in the queue is
minutes|minutes
goodbye|Thank you for calling. Goodbye.
closed|We are closed now. Please call again during business hours.
emergency|We are experiencing a service disruption. Please try again later.
invalid-choice|Sorry, that is not a valid choice.
estimated-wait|The estimated waiting time is
callback-offer|To be called back instead, press star.
callback-registered|Thank you. We will call you back.
leave-message|Please leave a message after the tone. Press pound when you are done.
sales-menu|For new orders, press 1. For order status, press 2. To go back, press star.
support-menu|For technical help, press 1. To leave a message, press 2. To go back, press star.
digit-0|zero
digit-1|one
digit-2|two
digit-3|three
digit-4|four
digit-5|five
digit-6|six
digit-7|seven
digit-8|eight
digit-9|nine'

have_tools() { command -v espeak-ng >/dev/null 2>&1 && command -v sox >/dev/null 2>&1; }

if ! have_tools && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${SWITCHBOARD_NO_APT:-}" ]; then
    echo "installing espeak-ng and sox with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng sox >/dev/null 2>&1 || true
fi

if have_tools; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "$prompts" | while IFS='|' read -r name text; do
        espeak-ng -s 150 -w "$tmp/$name.wav" "$text"
        # espeak writes 22.05 kHz; telephony wants 8 kHz mono μ-law, a little quieter to avoid clipping.
        sox "$tmp/$name.wav" -r 8000 -c 1 -e u-law "$out/$name.wav" gain -n -3
    done
    # Music on hold is not speech: an 8-second plucked C-F-G-C progression, soft enough to sit
    # under announcements and ending on its first chord so the loop is seamless.
    chord() { sox -n -r 8000 -c 1 -b 16 "$tmp/moh-$1.wav" synth 2 pluck "$2" pluck "$3" pluck "$4" remix - fade 0 2 0.3; }
    chord 1 C4 E4 G4
    chord 2 F4 A4 C5
    chord 3 G4 B4 D5
    chord 4 C4 E4 G4
    sox "$tmp/moh-1.wav" "$tmp/moh-2.wav" "$tmp/moh-3.wav" "$tmp/moh-4.wav" -r 8000 -c 1 -e u-law "$out/moh.wav" gain -n -9
    echo "espeak-ng $(espeak-ng --version 2>/dev/null | head -n1 | cut -c1-60) + sox" > "$out/SOURCE"
else
    echo "espeak-ng/sox not available: writing tone prompts" >&2
    cargo run -q -p switchboard-media --example generate_prompts -- "$out"
    echo "tone fallback (media::prompts::write_tone_prompts)" > "$out/SOURCE"
fi
echo "prompts in $out ($(cat "$out/SOURCE"))"
