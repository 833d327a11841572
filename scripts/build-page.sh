#!/usr/bin/env bash
# Builds the chat page's bundled part into public/assets/ (not in git) unless it is newer than
# its sources: web/*.js bundled by esbuild (ES modules, split: highlight.js core, each of its
# languages and KaTeX are chunks loaded on first use), plus KaTeX's stylesheet and fonts.
# markdown-it uses only the decoder of its `entities` dependency: importing that module alone keeps
# the encoder's tables out of the first load.
# The rest of the page (public/index.html, app.js, app.css) is served as it is.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$EDGECHAT_ROOT"

mkdir -p "${CARGO_TARGET_DIR:-target}"
exec 7>"${CARGO_TARGET_DIR:-target}/.edgechat-page-build.lock"
flock 7
stamp=public/assets/.edgechat-built
if [ -f "$stamp" ] && [ -z "$(find web package-lock.json scripts/build-page.sh -newer "$stamp" -print -quit)" ]; then
  say "page build is up to date"
  exit 0
fi
[ -x "$ESBUILD_BIN" ] || { echo "build-page: $ESBUILD_BIN is missing: run npm run setup" >&2; exit 1; }
[ -f node_modules/katex/dist/katex.min.css ] || { echo "build-page: npm packages are missing: run npm run setup" >&2; exit 1; }
say "building the page's scripts (web/ -> public/assets/)"
# Made beside its place and moved there whole, so that the page is never half built.
out=public/assets.new
rm -rf "$out" && mkdir -p "$out/katex"
"$ESBUILD_BIN" web/markdown.js --bundle --format=esm --splitting --minify --target=es2022 --log-level=warning \
  --outdir="$out" --entry-names='[name]' --chunk-names='chunks/[name]-[hash]' \
  --alias:entities=./node_modules/entities/lib/esm/decode.js
cp node_modules/katex/dist/katex.min.css "$out/katex/"
cp -r node_modules/katex/dist/fonts "$out/katex/fonts"
touch "$out/.edgechat-built"
rm -rf public/assets && mv "$out" public/assets
first=$(gzip -9 -c public/assets/markdown.js | wc -c)
say "page built: public/assets/markdown.js $(wc -c <public/assets/markdown.js) bytes raw, $first bytes gzip"
