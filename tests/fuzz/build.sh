#!/usr/bin/env bash
# build.sh: builds the libFuzzer targets with clang, ASan and UBSan.
#   tests/fuzz/build.sh [BUILD-DIR]        (default: build-fuzz)
# Compiles liblens (and the daemon's parsers) straight from the sources,
# without meson, so that it needs only clang, protoc-c and the -dev
# packages: everything with -fsanitize=fuzzer-no-link (coverage without
# libFuzzer's main) plus ASan and UBSan, every UBSan finding fatal. Each
# target then links one harness with -fsanitize=fuzzer. Objects are
# rebuilt when their source or a header is newer. A target whose module
# still lacks its entry point is skipped with a message. The last line
# printed is FUZZ_TARGETS=<paths of the targets built>.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-fuzz}
jobs=${FUZZ_JOBS:-2}
# FUZZ_SANITIZE overrides the sanitizer flags (e.g. to let one kind of
# finding go on, for a survey)
san=${FUZZ_SANITIZE:-"-fsanitize=address,undefined -fno-sanitize-recover=all"}
cflags="-g -O1 -std=gnu11 -fno-omit-frame-pointer $san -fsanitize=fuzzer-no-link"
cflags+=" -DCL_TARGET_OPENCL_VERSION=120 -DCL_USE_DEPRECATED_OPENCL_1_2_APIS"
cflags+=" -Icl -Idaemon -Iplugins -I$build/gen"
deps="glib-2.0 OpenCL libprotobuf-c"
daemon_deps="json-glib-1.0 gstreamer-video-1.0"
# everything lensd links, for the HTTP target (its parser sits in the
# module with the server)
lensd_deps="$daemon_deps gstreamer-app-1.0 gstreamer-base-1.0 libmicrohttpd
  libmosquitto libjpeg libpng libsystemd gio-2.0"

mkdir -p "$build/gen" "$build/obj"
# the sources meson generates: the ONNX schema's protobuf-c code, kernels
if [ ! -f "$build/gen/onnx.pb-c.c" ] || [ /usr/include/onnx/onnx.proto -nt "$build/gen/onnx.pb-c.c" ]; then
  protoc-c --proto_path=/usr/include/onnx --c_out="$build/gen" /usr/include/onnx/onnx.proto
fi
python3 cl/embed-kernels.py "$build/gen/lens-kernels.c.new" cl/kernels/*.cl
cmp -s "$build/gen/lens-kernels.c.new" "$build/gen/lens-kernels.c" ||
  mv "$build/gen/lens-kernels.c.new" "$build/gen/lens-kernels.c"

newest_header=$(ls -t cl/*.h daemon/*.h "$build/gen/onnx.pb-c.h" | head -1)
compile () {         # compile SOURCE LOG-DOMAIN EXTRA-PKGS: prints the command
  local source=$1 domain=$2 pkgs=$3 object
  object="$build/obj/$(echo "$source" | tr / _).o"
  if [ ! -f "$object" ] || [ "$source" -nt "$object" ] || [ "$newest_header" -nt "$object" ]; then
    # shellcheck disable=SC2086
    echo "clang $cflags '-DG_LOG_DOMAIN=\"$domain\"' '-DLENSD_VERSION=\"fuzz\"'" \
        "$(pkg-config --cflags $deps $pkgs) -c $source -o $object"
  fi
  objects+=("$object")
}

objects=()
for source in cl/*.c cl/ops/*.c cl/ref/*.c "$build/gen/onnx.pb-c.c" "$build/gen/lens-kernels.c"; do
  compile "$source" lens ""
done >"$build/jobs.txt"
lens_objects=("${objects[@]}")
objects=()
compile daemon/lensd-config.c lensd "$daemon_deps" >>"$build/jobs.txt"
config_objects=("${objects[@]}")
objects=()
if [ -f daemon/embed-web.py ]; then
  python3 daemon/embed-web.py "$build/gen/lensd-web.h" daemon/web/index.html \
      daemon/web/app.js daemon/web/style.css
fi
for source in daemon/*.c; do
  [ "$source" = daemon/lensd.c ] || [ "$source" = daemon/lensd-config.c ] ||
    compile "$source" lensd "$lensd_deps"
done >"$build/daemon-jobs.txt"
daemon_objects=("${objects[@]}")
xargs -d '\n' -r -P "$jobs" -n 1 sh -c 'eval "$0"' <"$build/jobs.txt"
# the rest of the daemon may be mid-way in another module: best effort
daemon_ok=yes
xargs -d '\n' -r -P "$jobs" -n 1 sh -c 'eval "$0"' <"$build/daemon-jobs.txt" \
    >"$build/daemon-build.log" 2>&1 || daemon_ok=no

built=()
link () {                       # link NAME SOURCE PKGS OBJECTS...
  local name=$1 source=$2 pkgs=$3
  shift 3
  # shellcheck disable=SC2086
  clang $cflags -fsanitize=fuzzer $(pkg-config --cflags $deps $pkgs) \
      "$source" "$@" $(pkg-config --libs $deps $pkgs) -lm -o "$build/$name"
  built+=("$build/$name")
}

link fuzz-onnx tests/fuzz/fuzz-onnx.c "" "${lens_objects[@]}"
link fuzz-npy tests/fuzz/fuzz-npy.c "" "${lens_objects[@]}"
# The daemon's parsers, once their modules define the entry points.
if nm "${config_objects[0]}" 2>/dev/null | grep ' T lensd_config_parse$' >/dev/null; then
  link fuzz-config tests/fuzz/fuzz-config.c "$daemon_deps" \
      "${config_objects[@]}" "${lens_objects[@]}"
else
  echo "fuzz-config: skipped, daemon/lensd-config.c has no lensd_config_parse yet" >&2
fi
if [ $daemon_ok = yes ] && nm "${daemon_objects[@]}" 2>/dev/null |
    grep ' T lensd_http_parse_stream_config$' >/dev/null; then
  link fuzz-http tests/fuzz/fuzz-http.c "$lensd_deps" "${daemon_objects[@]}" \
      "${config_objects[@]}" "${lens_objects[@]}"
else
  echo "fuzz-http: skipped, the daemon's modules do not build yet" \
      "(see $build/daemon-build.log)" >&2
fi
echo "FUZZ_TARGETS=${built[*]}"
