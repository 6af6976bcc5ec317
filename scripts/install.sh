#!/usr/bin/env bash
# Install everything DEFT-RL needs on a fresh Debian 12 machine (run as root): Debian packages for the
# lab and the test fixtures, then the pinned Python requirements and this repo (editable, `deftctl`).
# Idempotent: re-running only checks. Used by .ci/run and by the README's two commands.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
APT_PACKAGES=(
  iproute2 iptables nftables openssh-server openssh-client procps psmisc iputils-ping
  openvswitch-switch docker.io debootstrap supervisor redis-server influxdb
  tcpdump tcpreplay ethtool python3-venv python3-pip
  gcc  # builds nf._burst (the NF workers' recvmmsg/sendmmsg I/O); without it they use Python I/O
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== apt: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/tmp/deft-apt.log 2>&1 \
    || { tail -50 /tmp/deft-apt.log; exit 1; }
fi

echo "== pip: requirements.txt + this repo"
python3 -m pip install -q -r requirements.txt
python3 -m pip install -q -e .
echo "== installed: $(command -v deftctl); NF socket I/O: $(python3 -c 'import nf.burst as b; print("mmsg (compiled)" if b.ACCELERATED else "python (nf._burst not built)")')"
