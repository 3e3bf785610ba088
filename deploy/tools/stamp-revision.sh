#!/usr/bin/env bash
# Writes the git revision of this checkout into Sources/CommandSupport/BuildStamp.swift, so that `--version` of
# the binaries built next names it. Run before a release build (an image build, a packaging job); do not commit
# the result. Without git (a source tarball) it leaves the file as it is.
set -euo pipefail
cd "$(dirname "$0")/../.."
revision=$(git describe --always --dirty --abbrev=12 2>/dev/null || true)
if [ -z "$revision" ]; then
    echo "stamp-revision: not a git checkout; the revision stays unknown" >&2
    exit 0
fi
cat > Sources/CommandSupport/BuildStamp.swift <<SWIFT
// Rewritten by deploy/tools/stamp-revision.sh before a release build; the committed value is "unknown".
enum BuildStamp {
    static let revision = "$revision"
}
SWIFT
echo "stamp-revision: $revision"
