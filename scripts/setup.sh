#!/usr/bin/env bash
# Install everything riff-bridge needs on a fresh Debian-like machine, idempotently.
#   - system packages when missing and root: JACK and its headers, gcc (the native realtime core
#     is C, compiled at install against libjack), liblo tools, FluidSynth + GM soundfont,
#     libsndfile, and the real JACK programs the tests drive riff-bridge with (klick,
#     jack-midi-clock)
#   - a virtual environment in .venv with the package and its test extras
#   - torch: the machine's local CPU wheel when one is present (pinned by constraints),
#     otherwise whatever pip resolves (a GPU user gets their CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${RIFF_VENV:-.venv}
PY=${PYTHON:-python3}

apt_packages=(jackd2 libjack-jackd2-0 libjack-jackd2-dev gcc libc6-dev binutils liblo-tools fluidsynth
              fluid-soundfont-gm libsndfile1 klick jack-midi-clock chromium iproute2)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages: ${missing[*]}"
    echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections 2>/dev/null || true
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages (install them as root): ${missing[*]}" >&2
  fi
fi

# The native realtime core needs a C compiler and the JACK headers at install time.
if ! command -v gcc >/dev/null 2>&1 || [ ! -f /usr/include/jack/jack.h ]; then
  echo "setup: the native realtime core needs gcc and the JACK headers: install them (Debian: apt-get install gcc libjack-jackd2-dev), then run scripts/setup.sh again" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
constraints=()
local_torch=$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -n1 || true)
if [ -n "$local_torch" ]; then
  # This machine ships a CPU wheel of torch: pin to it so no CUDA build is pulled.
  printf 'torch==2.13.0\n' > "$VENV/constraints.txt"
  constraints=(-c "$VENV/constraints.txt")
  "$VENV/bin/python" -c "import torch" 2>/dev/null || "${PIP[@]}" "${constraints[@]}" "torch==2.13.0"
fi
stamp="$VENV/.installed-$(cat pyproject.toml setup.py bridge/live/core.c bridge/live/core.h bridge/live/core_build.py | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  "${PIP[@]}" "${constraints[@]}" -e ".[test,web,browser]"
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi
echo "setup: ready ($VENV)"
