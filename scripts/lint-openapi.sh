#!/usr/bin/env bash
# Lint the OpenAPI document with Redocly CLI's recommended rules (minus the
# two internal/httpapi/redocly.yaml turns off, with reasons). Needs Node.js
# and npx; the version is pinned so a new release's rules cannot fail an
# unchanged document.
set -euo pipefail
cd "$(dirname "$0")/.."
REDOCLY_VERSION=2.77.0
exec npx --yes "@redocly/cli@${REDOCLY_VERSION}" lint \
	--config internal/httpapi/redocly.yaml internal/httpapi/openapi.json
