#!/usr/bin/env bash
# The real builders hpcannotate drives that Debian does not package, built from their Go modules at
# pinned versions: crane (annotate --backend crane), buildkitd + buildctl (a BuildKit daemon) and
# docker buildx (build --backend buildx), installed as the docker CLI plugin `docker-buildx`.
#
#   bash .ci/install-go-tools.sh          # needs Go (1.26 builds these versions) and the module proxy
#
# Binaries go to `go env GOBIN` (default $(go env GOPATH)/bin, e.g. ~/go/bin): put it on PATH.
# GOPATH and GOCACHE stay Go's defaults so a reused machine finds the module and build caches
# (buildkitd takes minutes to compile on 2 cores); a tool already built at its pinned version is
# not built again. The plugin link goes to /usr/local/lib/docker/cli-plugins as root, else to
# ${DOCKER_CONFIG:-~/.docker}/cli-plugins.
set -euo pipefail

CRANE_VERSION=v0.22.1      # github.com/google/go-containerregistry
BUILDKIT_VERSION=v0.34.2   # github.com/moby/buildkit (buildkitd, buildctl)
BUILDX_VERSION=v0.38.2     # github.com/docker/buildx

if ! command -v go >/dev/null; then
  echo "install-go-tools: Go is not installed (https://go.dev/doc/install); crane, buildkitd and buildx need it" >&2
  exit 1
fi
bin="$(go env GOBIN)"
[ -n "$bin" ] || bin="$(go env GOPATH | cut -d: -f1)/bin"

# install NAME MODULE PACKAGE VERSION: `go install PACKAGE@VERSION` unless bin/NAME is that build already.
install() {
  local name=$1 module=$2 package=$3 version=$4
  if [ -x "$bin/$name" ] && go version -m "$bin/$name" 2>/dev/null \
      | awk -v m="$module" -v v="$version" '$1 == "mod" && $2 == m && $3 == v {found = 1} END {exit !found}'; then
    echo "install-go-tools: $name $version is installed ($bin/$name)"
    return
  fi
  echo "install-go-tools: building $name $version (go install $package@$version)"
  go install "$package@$version"
}

# install_from_module NAME MODULE VERSION: for modules whose go.mod has exclude/replace directives, which
# `go install pkg@version` refuses: build the command inside the downloaded module (its go.mod and go.sum
# as the project ships them), stamping the version the way the project's own build does.
install_from_module() {
  local name=$1 module=$2 version=$3
  if [ -x "$bin/$name" ] && "$bin/$name" --version 2>/dev/null | grep -qF " $version "; then
    echo "install-go-tools: $name $version is installed ($bin/$name)"
    return
  fi
  local dir
  dir="$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$dir" ] || { echo "install-go-tools: go mod download $module@$version failed" >&2; exit 1; }
  echo "install-go-tools: building $name $version (in $dir)"
  mkdir -p "$bin"
  (cd "$dir" && go build -trimpath -o "$bin/$name" \
    -ldflags "-X $module/version.Version=$version -X $module/version.Package=$module" "./cmd/$name")
}

install crane github.com/google/go-containerregistry \
  github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION"
install buildx github.com/docker/buildx github.com/docker/buildx/cmd/buildx "$BUILDX_VERSION"
# buildkit's go.mod has exclude directives: `go install github.com/moby/buildkit/cmd/buildkitd@...` refuses it
install_from_module buildctl github.com/moby/buildkit "$BUILDKIT_VERSION"
install_from_module buildkitd github.com/moby/buildkit "$BUILDKIT_VERSION"

if [ "$(id -u)" = 0 ]; then
  plugins=/usr/local/lib/docker/cli-plugins
else
  plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
fi
mkdir -p "$plugins"
ln -sfn "$bin/buildx" "$plugins/docker-buildx"
echo "install-go-tools: docker buildx plugin: $plugins/docker-buildx -> $bin/buildx"

case ":$PATH:" in
  *":$bin:"*) ;;
  *) echo "install-go-tools: add $bin to PATH (export PATH=\"$bin:\$PATH\")" ;;
esac
