#!/usr/bin/env bash
# Install the tools that `make test-examples` runs the examples in (Debian packages), idempotently:
#   Pure Data (pd -nogui), SuperCollider's sclang, Sonic Pi's server, GHC with Tidal 1.7.
set -euo pipefail
packages=(puredata-core supercollider-language sonic-pi-server ghc libghc-tidal-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "examples-setup: tools ready"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "examples-setup: missing packages (install them as root): ${missing[*]}" >&2
  exit 1
fi
echo "examples-setup: installing ${missing[*]} (large: GHC and SuperCollider)"
echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections 2>/dev/null || true
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=900 update -qq
apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "examples-setup: tools ready"
