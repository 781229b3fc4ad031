#!/usr/bin/env bash
# The Debian packages hpcannotate's builds, tests and demo use. As root, install the missing ones
# with apt-get; otherwise print exactly what to install and fail.
set -euo pipefail
PACKAGES=(
  make git            # the Makefile, recipes in git
  buildah             # the build backend (daemonless, --isolation chroot)
  docker-registry     # a real OCI registry for tests (CNCF distribution)
  apache2-utils       # htpasswd, for the registry with basic auth
  debootstrap         # local debian base images (hpcannotate base debian:bookworm)
  busybox-static      # local busybox base image (FROM scratch)
  skopeo              # the re-push baseline of bench/retrofit.py; a real client of the matrix
  runc                # the OCI runtime of BuildKit's worker, podman and containerd
  podman uidmap slirp4netns fuse-overlayfs  # a real client/runtime of the matrix
  docker.io containerd  # dockerd and ctr: real clients of the matrix
  umoci               # a real OCI layout client
  charliecloud charliecloud-builders  # ch-image / ch-run: real HPC runtime
  bubblewrap          # the sandbox that evaluates untrusted recipes
  slurm-wlm munge     # a real Slurm (slurmctld, slurmd) for `site --slurm`
  chromium            # headless checks of the `report` site
  openssl             # self-signed certificates for the TLS test registry
  pigz                # parallel gzip for the layers `collection apply` compresses
  iproute2 ca-certificates
)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "hpcannotate needs these Debian packages: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
