#!/usr/bin/env bash
# Refresh the browser assets shipped in src/vapixlog/web/assets from the npm registry.
# They are committed so that the service needs no network and no build step at run time.
set -euo pipefail
SWAGGER_UI=${SWAGGER_UI:-5.35.0}
MARKED=${MARKED:-15.0.12}
DOMPURIFY=${DOMPURIFY:-3.5.0}
dest="$(cd "$(dirname "$0")/.." && pwd)/src/vapixlog/web/assets"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "swagger-ui-dist@$SWAGGER_UI" "marked@$MARKED" "dompurify@$DOMPURIFY" >/dev/null
mkdir swagger marked dompurify
tar xzf "swagger-ui-dist-$SWAGGER_UI.tgz" -C swagger --strip-components 1
tar xzf "marked-$MARKED.tgz" -C marked --strip-components 1
tar xzf "dompurify-$DOMPURIFY.tgz" -C dompurify --strip-components 1
cp swagger/swagger-ui-bundle.js swagger/swagger-ui.css swagger/swagger-ui-bundle.js.LICENSE.txt "$dest/"
cp swagger/LICENSE "$dest/swagger-ui.LICENSE"
cp marked/marked.min.js "$dest/"
cp marked/LICENSE.md "$dest/marked.LICENSE.md"
cp dompurify/dist/purify.min.js "$dest/"
cp dompurify/LICENSE "$dest/dompurify.LICENSE"
printf 'swagger-ui-dist %s\nmarked %s\ndompurify %s\n' "$SWAGGER_UI" "$MARKED" "$DOMPURIFY" > "$dest/VERSIONS"
