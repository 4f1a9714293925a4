#!/usr/bin/env bash
# Deploy lightcone to Fly.io: one image, a core app and an edge app (docs/deploy-fly.md).
#
# Usage: deploy/fly/deploy.sh [--dry-run] [--image REF] [--core-count N]
#   --dry-run       Print every fly command this would run, one per line, and run none (fly
#                   need not be installed). Existence checks are printed too and taken as
#                   "not found", so the output is what a first deploy runs.
#   --image REF     Deploy the existing image REF to both apps instead of building one, e.g.
#                   registry.fly.io/lightcone-core:deployment-20261127T101500Z (a rollback).
#   --core-count N  Run N core Machines (1 to 10) in the primary region (fly scale count).
#                   More than one share a PostgreSQL and a Redis: LIGHTCONE_STORE and
#                   LIGHTCONE_BROKER below, or secrets the core app already has. Without
#                   it, the core keeps the Machines it has (one on a first deploy).
#
# Environment (all optional):
#   CORE_APP, EDGE_APP     app names; default: `app` in fly.core.toml / fly.edge.toml
#   FLY_ORG                organization of new apps; default: personal
#   EDGE_REGIONS           comma-separated edge regions; default: iad,lhr,nrt,syd
#   LIGHTCONE_LINK_TOKEN   link token of both apps; default: kept if both apps have one,
#                          else generated
#   LIGHTCONE_ADMIN_TOKEN  admin token of the core; default: kept if set, else generated
#                          and printed once on stderr
#   LIGHTCONE_STORE        postgresql://... URL of the core's store (a managed PostgreSQL);
#                          staged as a core secret when given; default: SQLite on the volume
#   LIGHTCONE_BROKER       redis://... (or rediss://) URL of the core nodes' broker (e.g. an
#                          Upstash Redis made by fly redis create); staged as a core secret
#                          when given
#   IMAGE_LABEL            label of the image built; default: deployment-<UTC time>
#   FLY                    the flyctl command; default: fly, else flyctl
#
# Idempotent: apps, the volume and secrets are created only when missing, and running it
# again converges to the same Machines. The primary region is `primary_region` of
# fly.core.toml; fly.edge.toml must name the same one.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/../.."  # the repository root: the build context, and what fly paths are relative to

core_toml=deploy/fly/fly.core.toml
edge_toml=deploy/fly/fly.edge.toml
dockerfile=deploy/fly/Dockerfile
ignorefile=deploy/fly/.dockerignore
core_port=8081
mesh_port=8090 # LIGHTCONE_MESH_PORT in fly.edge.toml
max_cores=10  # core Machines; each holds a pool of PostgreSQL connections

dry_run=false
image=""
core_count=""
while (($#)); do
  case $1 in
    --dry-run) dry_run=true ;;
    --image)
      [[ $# -ge 2 ]] || { echo "deploy.sh: --image needs a value" >&2; exit 2; }
      image=$2
      shift
      ;;
    --core-count)
      if ! [[ $# -ge 2 && $2 =~ ^[1-9][0-9]?$ ]] || (($2 > max_cores)); then
        echo "deploy.sh: --core-count needs a number from 1 to $max_cores" >&2
        exit 2
      fi
      core_count=$2
      shift
      ;;
    -h | --help)
      sed -n '2,/^$/s/^# \{0,1\}//p' "$here/deploy.sh"
      exit 0
      ;;
    *) echo "deploy.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "deploy.sh: $*" >&2; exit 1; }
exec 3>&1  # the dry run's output, also from inside $(...)

# toml_value FILE KEY: the first `KEY = "value"` of FILE (top level or in a table).
toml_value() { sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$1" | head -n 1; }

core_app=${CORE_APP:-$(toml_value "$core_toml" app)}
edge_app=${EDGE_APP:-$(toml_value "$edge_toml" app)}
primary=$(toml_value "$core_toml" primary_region)
volume=$(toml_value "$core_toml" source)
org=${FLY_ORG:-personal}
edge_regions=${EDGE_REGIONS:-iad,lhr,nrt,syd}
label=${IMAGE_LABEL:-deployment-$(date -u +%Y%m%dT%H%M%SZ)}
[[ -n $primary && -n $volume ]] || die "cannot read $core_toml"
for name in "$core_app" "$edge_app"; do
  [[ $name =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "invalid app name '$name'"
done
[[ $edge_regions =~ ^[a-z]{3}(,[a-z]{3})*$ ]] || die "EDGE_REGIONS must be like iad,lhr,syd"
[[ $(toml_value "$edge_toml" primary_region) == "$primary" ]] ||
  die "primary_region differs between $core_toml and $edge_toml"

if ! $dry_run; then
  fly_cmd=${FLY:-}
  if [[ -z $fly_cmd ]]; then
    if command -v fly >/dev/null; then fly_cmd=fly; else fly_cmd=flyctl; fi
  fi
  command -v "$fly_cmd" >/dev/null || die "flyctl not found: https://fly.io/docs/flyctl/install/"
fi

# show ARGS...: print `fly ARGS...` as a shell command line (quoting only what needs it).
show() {
  local line=fly arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
      line+=" $arg"
    else
      line+=" '${arg//\'/\'\\\'\'}'"
    fi
  done
  printf '%s\n' "$line" >&3
}

# fly ARGS...: run flyctl, or only print the command in a dry run.
fly() {
  if $dry_run; then show "$@"; return 0; fi
  echo "+ fly $*" >&2
  command "$fly_cmd" "$@"
}

# found CMD...: the check command succeeds (false in a dry run: nothing exists yet).
found() {
  if $dry_run; then show "$@"; return 1; fi
  command "$fly_cmd" "$@" >/dev/null 2>&1
}

# output CMD...: what the read-only CMD prints, or nothing if it fails (or in a dry run).
output() {
  if $dry_run; then show "$@"; return 0; fi
  command "$fly_cmd" "$@" 2>/dev/null || true
}

# has WORD TEXT: TEXT has WORD as a whole word.
has() { grep -qw -- "$1" <<<"$2"; }

# stage_secrets APP NAME=VALUE...: staged for the next deploy; values go through stdin, so
# they never appear in a process list (or in a dry run's output).
stage_secrets() {
  local app=$1
  shift
  if $dry_run; then
    show secrets import --app "$app" --stage
    printf '#   stdin: %s=<secret>\n' "${@%%=*}"
    return 0
  fi
  echo "+ fly secrets import --app $app --stage  (${*%%=*})" >&2
  printf '%s\n' "$@" | command "$fly_cmd" secrets import --app "$app" --stage
}

new_token() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

$dry_run && echo "# deploy.sh --dry-run: the fly commands a first deploy runs (none is run)"

found auth whoami || $dry_run || die "not logged in to Fly.io: run fly auth login"

# 1. Apps and the core's volume.
for app in "$core_app" "$edge_app"; do
  found status --app "$app" || fly apps create "$app" --org "$org"
done
has "$volume" "$(output volumes list --app "$core_app")" ||
  fly volumes create "$volume" --app "$core_app" --region "$primary" --size 1 --yes

# 2. Secrets: one link token shared by both apps, an admin token for the core.
core_names=$(output secrets list --app "$core_app")
edge_names=$(output secrets list --app "$edge_app")
# Several core Machines share one PostgreSQL and one Redis (docs/deploy-fly.md, "Several core
# Machines"). This script makes neither (each is a billed service of its own, made once): a
# real run stops and says how; a dry run says it in a comment and goes on.
# needs NAME WHAT HOW: the core app has secret NAME (or it is given), else say so.
needs() {
  [[ -n ${!1:-} ]] || has "$1" "$core_names" && return 0
  $dry_run || die "--core-count $core_count needs $2: set $1 ($3)"
  printf '# needs %s (%s): %s\n' "$1" "$2" "$3" >&3
}
if [[ -n $core_count ]] && ((core_count > 1)); then
  needs LIGHTCONE_STORE "a shared store" \
    "fly mpg create --name $core_app-db --region $primary, then fly mpg attach CLUSTER_ID --app $core_app --variable-name LIGHTCONE_STORE"
  needs LIGHTCONE_BROKER "a broker" \
    "fly redis create --name $core_app-broker --region $primary --no-replicas --disable-eviction; LIGHTCONE_BROKER=its private URL (fly redis status $core_app-broker)"
fi
core_link=false
edge_link=false
has LIGHTCONE_LINK_TOKEN "$core_names" && core_link=true
has LIGHTCONE_LINK_TOKEN "$edge_names" && edge_link=true
link=${LIGHTCONE_LINK_TOKEN:-}
if [[ -z $link ]] && ! $core_link && ! $edge_link; then
  link=$(new_token)
elif [[ -z $link ]] && [[ $core_link != "$edge_link" ]]; then
  die "only one app has LIGHTCONE_LINK_TOKEN: rerun with LIGHTCONE_LINK_TOKEN=... set"
fi
core_secrets=()
[[ -n $link ]] && core_secrets+=("LIGHTCONE_LINK_TOKEN=$link")
admin=${LIGHTCONE_ADMIN_TOKEN:-}
if [[ -z $admin ]] && ! has LIGHTCONE_ADMIN_TOKEN "$core_names"; then
  admin=$(new_token)
  $dry_run || echo "deploy.sh: new admin token (store it, it is not shown again): $admin" >&2
fi
[[ -n $admin ]] && core_secrets+=("LIGHTCONE_ADMIN_TOKEN=$admin")
[[ -n ${LIGHTCONE_STORE:-} ]] && core_secrets+=("LIGHTCONE_STORE=$LIGHTCONE_STORE")
[[ -n ${LIGHTCONE_BROKER:-} ]] && core_secrets+=("LIGHTCONE_BROKER=$LIGHTCONE_BROKER")
((${#core_secrets[@]} == 0)) || stage_secrets "$core_app" "${core_secrets[@]}"
[[ -z $link ]] || stage_secrets "$edge_app" "LIGHTCONE_LINK_TOKEN=$link"

# 3. The core: build the one image (unless --image) and deploy it; one Machine, no public IP.
if [[ -n $image ]]; then
  fly deploy . --config "$core_toml" --app "$core_app" --image "$image" \
    --ha=false --no-public-ips
else
  fly deploy . --config "$core_toml" --app "$core_app" --dockerfile "$dockerfile" \
    --ignorefile "$ignorefile" --image-label "$label" --ha=false --no-public-ips
  image=registry.fly.io/$core_app:$label
fi
# Several core Machines: all in the primary region; each gets a volume of its own (unused
# with PostgreSQL), and $core_app.internal names them all, so every edge fails over.
[[ -z $core_count ]] || fly scale count "$core_count" --app "$core_app" --region "$primary" --yes

# 4. The edges: the same image, pointed at the core over 6PN, then one Machine per region.
# Each edge meshes with the others over 6PN: <region>.<edge app>.internal names the Machine of
# a region (docs/deploy-fly.md, "The edge mesh").
fly deploy . --config "$edge_toml" --app "$edge_app" --image "$image" --ha=false \
  --env "LIGHTCONE_CORE_URL=http://$core_app.internal:$core_port" \
  --env "LIGHTCONE_CORE_APP=$core_app" \
  --env "LIGHTCONE_MESH_PEERS=$edge_regions" \
  --env "LIGHTCONE_MESH_PEER_URL=ws://{region}.$edge_app.internal:$mesh_port/mesh"
IFS=, read -r -a regions <<<"$edge_regions"
fly scale count "${#regions[@]}" --app "$edge_app" --region "$edge_regions" \
  --max-per-region 1 --yes

echo "deploy.sh: image $image; edges at https://$edge_app.fly.dev in $edge_regions" >&2
[[ -z $core_count ]] || echo "deploy.sh: $core_count core Machine(s) in $primary" >&2
