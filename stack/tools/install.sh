#!/usr/bin/env bash
# Installs the real programs Flotilla's tests run against, from pinned versions, into a per-machine
# cache outside the repository. Idempotent: a second run finds everything cached and returns at once.
#   kube-apiserver, kube-controller-manager  <- Go module proxy, k8s.io/kubernetes (wrapper module)
#   etcd                                      <- Go module proxy, go.etcd.io/etcd/server/v3
#   docker-registry, git, htpasswd, sshd      <- Debian packages (openssh-server: the SSH git server)
#   helm, kustomize (always: they render bundles) <- Go module proxy
#   oras, cosign, Distribution v3 (only with --extras) <- Go module proxy (cosign: signature interop tests;
#                                             Distribution v3: the second registry implementation, the benchmarks')
#   with --node (one real node: stack/node.ts):
#     kubelet, kube-scheduler                 <- Go module proxy, same wrapper module as kube-apiserver
#     crane                                   <- Go module proxy (builds the node's images without Docker)
#     containerd, runc, CNI plugins, iptables, nftables, busybox-static <- Debian packages
#   chromium (the dashboard e2e's browser)    <- Debian package
# Prints progress; exits non-zero naming the part that failed.
set -euo pipefail

K8S_VERSION="${FLOTILLA_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${FLOTILLA_ETCD_VERSION:-v3.6.16}"
# Helm v4: Fleet renders charts with the helm.sh/helm/v4 library since Fleet v0.15, so a chart renders
# here as it does under Fleet (v3 would be the engine of Fleet <= v0.14).
HELM_VERSION="${FLOTILLA_HELM_VERSION:-v4.3.1}"
# v5.8.3 needs Go 1.27; v5.8.1 builds with the machine's Go 1.26.
KUSTOMIZE_VERSION="${FLOTILLA_KUSTOMIZE_VERSION:-v5.8.1}"
ORAS_VERSION="${FLOTILLA_ORAS_VERSION:-v1.3.6}"
CRANE_VERSION="${FLOTILLA_CRANE_VERSION:-v0.22.1}"
# cosign: the real CLI the signing e2e interoperates with (key mode only, no transparency log).
COSIGN_VERSION="${FLOTILLA_COSIGN_VERSION:-v3.1.3}"
# Distribution v3: the e2e's second registry implementation, and the benchmarks' registry (stack/registry.ts).
DISTRIBUTION_VERSION="${FLOTILLA_DISTRIBUTION_VERSION:-v3.0.0}"
CACHE="${FLOTILLA_CACHE:-$HOME/.cache/flotilla}"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXTRAS=0
NODE=0
for a in "$@"; do
  case "$a" in
    --extras) EXTRAS=1 ;;
    --node) NODE=1 ;;
    *) printf '[flotilla-stack] unknown option %s (known: --extras, --node)\n' "$a" >&2; exit 2 ;;
  esac
done

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
step() { printf '[flotilla-stack] %s\n' "$*" >&2; }
fail() { printf '[flotilla-stack] FAILED: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || fail "go: no Go toolchain on PATH (needed to build kube-apiserver and etcd)"

# --- Debian packages -------------------------------------------------------------------------
need_apt=()
command -v docker-registry >/dev/null || [ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
command -v git >/dev/null || need_apt+=(git)
command -v htpasswd >/dev/null || need_apt+=(apache2-utils)
command -v openssl >/dev/null || need_apt+=(openssl)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
if [ "$NODE" = 1 ]; then
  # Debian bookworm's packages; the upstream versions are checked after install (see node_versions below).
  [ -x /usr/bin/containerd ] || need_apt+=(containerd)
  [ -x /usr/sbin/runc ] || [ -x /usr/bin/runc ] || need_apt+=(runc)
  [ -x /usr/lib/cni/bridge ] || need_apt+=(containernetworking-plugins)
  [ -x /usr/sbin/iptables ] || need_apt+=(iptables)
  # nft: the node's teardown deletes the nf_tables tables iptables-nft created for the kubelet.
  [ -x /usr/sbin/nft ] || need_apt+=(nftables)
  [ -x /bin/busybox ] || need_apt+=(busybox-static)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || fail "apt-get update failed"
  # policy-rc.d keeps the packaged services (registry on :5000, sshd on :22) from starting.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  # Its stderr (debconf notices) goes to a log shown only on failure.
  apt_log="$(mktemp)"
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null 2>"$apt_log" \
    || { tail -20 "$apt_log" >&2; rm -f /usr/sbin/policy-rc.d "$apt_log"; fail "apt-get install ${need_apt[*]}"; }
  rm -f "$apt_log"
  rm -f /usr/sbin/policy-rc.d
  # The package may have started its service anyway; stop it so it holds no port.
  (systemctl stop docker-registry 2>/dev/null; pkill -f '/usr/bin/docker-registry serve /etc/docker/registry' 2>/dev/null) || true
  (systemctl stop ssh 2>/dev/null) || true
  # containerd's package starts a system service; the node runs its own containerd with its own paths.
  (systemctl stop containerd 2>/dev/null; systemctl disable containerd 2>/dev/null) || true
fi
if [ "$NODE" = 1 ]; then
  # Pinned by upstream version line: the node was measured with containerd 1.6, runc 1.1, CNI plugins 1.1.
  check_ver() { # package, expected upstream prefix
    v="$(dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true)"
    case "$v" in "$2"*|*:"$2"*) ;; *) fail "$1: installed version '$v' is not the pinned $2.x (install $1 $2 or set up the node by hand)";; esac
  }
  check_ver containerd 1.6; check_ver runc 1.1; check_ver containernetworking-plugins 1.1
fi

# --- Headless browser: Debian chromium for the dashboard's end-to-end test (e2e/dashboard.e2e.ts) ------
# Browser downloads from the internet do not work on these machines; the test drives /usr/bin/chromium
# with playwright-core. Installed only when missing.
install_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  step "installing Debian package: chromium (headless browser for the dashboard e2e)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || fail "apt-get update failed"
  local log; log="$(mktemp)"
  apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>"$log" \
    || { tail -20 "$log" >&2; rm -f "$log"; fail "apt-get install chromium"; }
  rm -f "$log"
}
install_chromium

# --- Kubernetes --------------------------------------------------------------------------------
K8S_DIR="$CACHE/kubernetes-$K8S_VERSION"
if [ ! -x "$K8S_DIR/bin/kube-apiserver" ] || [ ! -x "$K8S_DIR/bin/kube-controller-manager" ]; then
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  staging="v0.${K8S_VERSION#v1.}"
  work="$K8S_DIR/src"; mkdir -p "$work" "$K8S_DIR/bin"; cd "$work"
  step "kubernetes $K8S_VERSION: preparing wrapper module (staging modules at $staging)"
  cat > go.mod <<MOD
module flotilla.dev/stack-tools/kubernetes

go 1.24
MOD
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
GO
  go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
  modfile="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
  [ -f "$modfile" ] || go mod download -x "k8s.io/kubernetes@$K8S_VERSION" 2>/dev/null || true
  [ -f "$modfile" ] || go mod download "k8s.io/kubernetes@$K8S_VERSION" || fail "kubernetes: cannot download k8s.io/kubernetes@$K8S_VERSION"
  # Every staging module replaced by ./staging/... upstream becomes its published v0.X.Y.
  grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$modfile" | awk '{print $1}' | while read -r m; do
    go mod edit -replace="$m=$m@$staging"
  done
  # The toolchain directive of upstream is irrelevant here; keep our go line compatible.
  step "kubernetes $K8S_VERSION: resolving dependencies (downloads modules; first time only)"
  go mod tidy -e >/dev/null 2>"$work/tidy.log" || { tail -20 "$work/tidy.log" >&2; fail "kubernetes: go mod tidy"; }
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitTreeState=clean"
  for cmd in kube-apiserver kube-controller-manager; do
    step "kubernetes $K8S_VERSION: building $cmd (a cold build takes many minutes on 2 cores)"
    go build -trimpath -ldflags "$ldflags" -o "$K8S_DIR/bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd" 2>"$work/build-$cmd.log" \
      || { tail -30 "$work/build-$cmd.log" >&2; fail "kubernetes: building $cmd"; }
    mv "$K8S_DIR/bin/$cmd.tmp" "$K8S_DIR/bin/$cmd"
  done
fi

# --- Node (--node): kubelet and kube-scheduler from the same release, and crane -----------------
if [ "$NODE" = 1 ]; then
  node_cmds=()
  for cmd in kubelet kube-scheduler; do [ -x "$K8S_DIR/bin/$cmd" ] || node_cmds+=("$cmd"); done
  if [ ${#node_cmds[@]} -gt 0 ]; then
    minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
    # Its own wrapper module (a copy of the control plane's, with the node's commands imported), so the
    # control plane's module stays as it was built.
    work="$K8S_DIR/src-node"; mkdir -p "$work"; cd "$work"
    cp "$K8S_DIR/src/go.mod" "$K8S_DIR/src/go.sum" .
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
    step "kubernetes $K8S_VERSION: resolving the node's dependencies"
    go mod tidy -e >/dev/null 2>"$work/tidy.log" || { tail -20 "$work/tidy.log" >&2; fail "kubernetes node: go mod tidy"; }
    ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitTreeState=clean"
    for cmd in "${node_cmds[@]}"; do
      step "kubernetes $K8S_VERSION: building $cmd (about 4 minutes cold on 2 cores)"
      t0=$(date +%s)
      go build -trimpath -ldflags "$ldflags" -o "$K8S_DIR/bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd" 2>"$work/build-$cmd.log" \
        || { tail -30 "$work/build-$cmd.log" >&2; fail "kubernetes: building $cmd"; }
      mv "$K8S_DIR/bin/$cmd.tmp" "$K8S_DIR/bin/$cmd"
      step "kubernetes $K8S_VERSION: $cmd built in $(( $(date +%s) - t0 )) s"
    done
  fi
fi

# --- etcd --------------------------------------------------------------------------------------
ETCD_DIR="$CACHE/etcd-$ETCD_VERSION"
if [ ! -x "$ETCD_DIR/bin/etcd" ]; then
  work="$ETCD_DIR/src"; mkdir -p "$work" "$ETCD_DIR/bin"; cd "$work"
  step "etcd $ETCD_VERSION: building"
  cat > go.mod <<MOD
module flotilla.dev/stack-tools/etcd

go 1.24
MOD
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go mod tidy -e >/dev/null 2>"$work/tidy.log" || { tail -20 "$work/tidy.log" >&2; fail "etcd: go mod tidy"; }
  go build -trimpath -ldflags "-s -w" -o "$ETCD_DIR/bin/etcd.tmp" go.etcd.io/etcd/server/v3 2>"$work/build.log" \
    || { tail -30 "$work/build.log" >&2; fail "etcd: building"; }
  mv "$ETCD_DIR/bin/etcd.tmp" "$ETCD_DIR/bin/etcd"
fi

# --- Go programs: helm and kustomize always (the agent and `flotilla render` run them); oras, cosign and Distribution v3 with --extras
go_tools=("helm:helm.sh/helm/v4/cmd/helm:$HELM_VERSION" "kustomize:sigs.k8s.io/kustomize/kustomize/v5:$KUSTOMIZE_VERSION")
[ "$EXTRAS" = 1 ] && go_tools+=("oras:oras.land/oras/cmd/oras:$ORAS_VERSION")
[ "$EXTRAS" = 1 ] && go_tools+=("cosign:github.com/sigstore/cosign/v3/cmd/cosign:$COSIGN_VERSION")
[ "$EXTRAS" = 1 ] && go_tools+=("registry:github.com/distribution/distribution/v3/cmd/registry:$DISTRIBUTION_VERSION")
[ "$NODE" = 1 ] && go_tools+=("crane:github.com/google/go-containerregistry/cmd/crane:$CRANE_VERSION")
for spec in "${go_tools[@]}"; do
  name="${spec%%:*}"; rest="${spec#*:}"; pkg="${rest%:*}"; ver="${rest##*:}"
  dir="$CACHE/$name-$ver"
  if [ ! -x "$dir/bin/$name" ]; then
    step "$name $ver: building"
    mkdir -p "$dir/bin"
    GOBIN="$dir/bin" go install -trimpath -ldflags "-s -w" "$pkg@$ver" 2>"$dir/build.log" \
      || { tail -30 "$dir/build.log" >&2; fail "$name: go install $pkg@$ver"; }
  fi
done

# The node's sandbox process (stack/tools/pause, a few lines of Go): the pause image is built from it.
PAUSE_SRC="$SCRIPT_DIR/pause/main.go"
PAUSE_DIR="$CACHE/pause-$(sha256sum "$PAUSE_SRC" | cut -c1-12)"
if [ "$NODE" = 1 ] && [ ! -x "$PAUSE_DIR/bin/pause" ]; then
  step "pause: building"
  mkdir -p "$PAUSE_DIR/bin"
  (cd "$PAUSE_DIR" && GOFLAGS= GO111MODULE=off go build -trimpath -ldflags "-s -w" -o "$PAUSE_DIR/bin/pause.tmp" "$PAUSE_SRC") 2>"$PAUSE_DIR/build.log" \
    || { tail -30 "$PAUSE_DIR/build.log" >&2; fail "pause: go build $PAUSE_SRC"; }
  mv "$PAUSE_DIR/bin/pause.tmp" "$PAUSE_DIR/bin/pause"
fi

# Writes stdin to a manifest atomically: the test shards run this installer side by side, and a reader must
# never see a half-written (or truncated, empty) file. rename(2) in one folder replaces it in one step.
write_manifest() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  chmod 644 "$tmp"
  mv -f "$tmp" "$1"
}

# A small manifest the TypeScript side reads to find the binaries.
mkdir -p "$CACHE"
write_manifest "$CACHE/stack-binaries.json" <<JSON
{
  "kubeApiserver": "$K8S_DIR/bin/kube-apiserver",
  "kubeControllerManager": "$K8S_DIR/bin/kube-controller-manager",
  "etcd": "$ETCD_DIR/bin/etcd",
  "registry": "$(command -v docker-registry || echo /usr/bin/docker-registry)",
  "git": "$(command -v git)",
  "htpasswd": "$(command -v htpasswd)",
  "sshd": "/usr/sbin/sshd",
  "helm": "$CACHE/helm-$HELM_VERSION/bin/helm",
  "kustomize": "$CACHE/kustomize-$KUSTOMIZE_VERSION/bin/kustomize",
  "oras": "$CACHE/oras-$ORAS_VERSION/bin/oras",
  "cosign": "$CACHE/cosign-$COSIGN_VERSION/bin/cosign",
  "distributionV3": "$CACHE/registry-$DISTRIBUTION_VERSION/bin/registry",
  "k8sVersion": "$K8S_VERSION",
  "etcdVersion": "$ETCD_VERSION"
}
JSON
if [ "$NODE" = 1 ]; then
  # The node's programs, in their own manifest (stack/node.ts reads it).
  write_manifest "$CACHE/node-binaries.json" <<JSON
{
  "kubelet": "$K8S_DIR/bin/kubelet",
  "kubeScheduler": "$K8S_DIR/bin/kube-scheduler",
  "crane": "$CACHE/crane-$CRANE_VERSION/bin/crane",
  "containerd": "/usr/bin/containerd",
  "runc": "$(command -v runc || echo /usr/sbin/runc)",
  "cniBinDir": "/usr/lib/cni",
  "busybox": "/bin/busybox",
  "pause": "$PAUSE_DIR/bin/pause",
  "k8sVersion": "$K8S_VERSION"
}
JSON
fi
step "binaries ready (cache: $CACHE)"
