#!/usr/bin/env bash
# Builds the release tarball: target/package/chronicle-<version>-<target>.tar.gz and its .sha256.
#   bin/chronicle, bin/chronicle-host        the client Claude Code runs, and the host beside it
#   lib/chronicle/plugins/*.so               the built-in plugins
#   include/chronicle_plugin.h               the C ABI header for plugin authors
#   share/chronicle/plugin-api/              the plugin API crate's source (`new-plugin` builds against it)
#   share/man/man1/chronicle.1, share/{bash-completion,zsh,fish}/...   man page and completions
#   README.md, ARCHITECTURE.md, LICENSE-*
# Install from it with `bin/chronicle install`: it copies the binaries and plugins to where it
# keeps them (the data directory), so the unpacked folder can be deleted afterwards.
# PACKAGE_PROFILE=debug packages the build already in target/debug (the tests do) instead of
# building the release.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PACKAGE_PROFILE:-release}"
if [ "$profile" = release ]; then
    scripts/build.sh
fi
built="target/$profile"
version="$("$built/chronicle" --version | awk '{print $2}')"
triple="$(rustc -vV | sed -n 's/^host: //p')"
name="chronicle-$version-$triple"
[ "$profile" = release ] || name="$name-$profile"
out=target/package
stage="$out/$name"
rm -rf "$stage" "$out/$name.tar.gz" "$out/$name.tar.gz.sha256"
mkdir -p "$stage/bin" "$stage/lib/chronicle/plugins" "$stage/include"
install -m 0755 "$built/chronicle" "$built/chronicle-host" "$stage/bin/"
for p in bash_guard file_guard secret_guard session_context; do
    install -m 0644 "$built/libchronicle_$p.so" "$stage/lib/chronicle/plugins/"
done
install -m 0644 plugin-api/include/chronicle_plugin.h "$stage/include/"
mkdir -p "$stage/share/chronicle/plugin-api"
cp -R plugin-api/Cargo.toml plugin-api/README.md plugin-api/src plugin-api/include "$stage/share/chronicle/plugin-api/"
mkdir -p "$stage/share/man/man1" "$stage/share/bash-completion/completions" "$stage/share/zsh/site-functions" "$stage/share/fish/vendor_completions.d"
"$built/chronicle" man > "$stage/share/man/man1/chronicle.1"
"$built/chronicle" completions bash > "$stage/share/bash-completion/completions/chronicle"
"$built/chronicle" completions zsh > "$stage/share/zsh/site-functions/_chronicle"
"$built/chronicle" completions fish > "$stage/share/fish/vendor_completions.d/chronicle.fish"
install -m 0644 README.md ARCHITECTURE.md LICENSE-MIT LICENSE-APACHE "$stage/"
# Reproducible enough: fixed owner and order, file times from the commit.
stamp="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$stamp" -C "$out" -czf "$out/$name.tar.gz" "$name"
(cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "$out/$name.tar.gz"
