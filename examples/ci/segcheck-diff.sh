#!/usr/bin/env bash
# Review a change to a policies repository before it merges: which cells it opens and closes.
#
# For any CI runner. Checks out the base and the head revision of the repository (git archive: no working
# tree is touched), runs `segcheck diff` on them, and posts its markdown as a review comment. Exit status:
# segcheck's (0 nothing opens, 1 a cell opens -- or whatever --fail-on chose --, 2 bad manifests), so the
# job fails on an opening change while the comment says what and why.
#
# Environment (all optional):
#   REPO_DIR       the clone of the policies repository (default: .), with both revisions fetched
#   BASE_REF       the revision the change goes into (default: origin/main)
#   HEAD_REF       the change (default: HEAD)
#   POLICY_PATHS   space-separated folders or files inside the repository holding the manifests (default: .)
#   SEGCHECK_ARGS  more `segcheck diff` options, e.g. "--ovnk-version 4.14 --fail-on changed"
#   OUT_DIR        where diff.md and diff.junit.xml are written (default: a temporary folder)
#   COMMENT_URL    the review-comment endpoint; unset: print the comment instead of posting it
#   COMMENT_TOKEN  bearer token for COMMENT_URL
set -euo pipefail

REPO_DIR=${REPO_DIR:-.}
BASE_REF=${BASE_REF:-origin/main}
HEAD_REF=${HEAD_REF:-HEAD}
POLICY_PATHS=${POLICY_PATHS:-.}
OUT_DIR=${OUT_DIR:-$(mktemp -d)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

checkout() {  # checkout REF DIR: the policy paths of one revision, as files
    mkdir -p "$2"
    # shellcheck disable=SC2086  # POLICY_PATHS is a list of paths
    git -C "$REPO_DIR" archive --format=tar "$1" -- $POLICY_PATHS | tar -x -C "$2"
}
checkout "$BASE_REF" "$work/base"
checkout "$HEAD_REF" "$work/head"

# Run from the checkouts' folder so the comment names files as base/PATH and head/PATH, not temporary paths.
args=()
for p in $POLICY_PATHS; do
    args+=(--base "base/$p" -f "head/$p")
done
read -r -a extra <<<"${SEGCHECK_ARGS:-}"
set +e
(cd "$work" && segcheck diff "${args[@]}" "${extra[@]}" -o markdown) >"$work/diff.md"
status=$?
(cd "$work" && segcheck diff "${args[@]}" "${extra[@]}" -o junit) >"$OUT_DIR/diff.junit.xml"  # the runner's test report
set -e
if [ "$status" -ge 2 ]; then
    echo "segcheck diff could not compare $BASE_REF and $HEAD_REF (exit $status): see the errors above" >&2
    exit "$status"
fi
{ cat "$work/diff.md"; printf '\nbase `%s`, head `%s`\n' "$(git -C "$REPO_DIR" rev-parse --short "$BASE_REF")" \
    "$(git -C "$REPO_DIR" rev-parse --short "$HEAD_REF")"; } >"$OUT_DIR/diff.md"

if [ -z "${COMMENT_URL:-}" ]; then
    cat "$OUT_DIR/diff.md"
else
    # ---- PLACEHOLDER: post the review comment. Adapt to your forge; both take a JSON body with the text: ----
    #   GitHub:  COMMENT_URL=$GITHUB_API_URL/repos/$GITHUB_REPOSITORY/issues/<PR number>/comments   (key "body")
    #   GitLab:  COMMENT_URL=$CI_API_V4_URL/projects/$CI_PROJECT_ID/merge_requests/$CI_MERGE_REQUEST_IID/notes
    python3 -c 'import json, sys; print(json.dumps({"body": sys.stdin.read()}))' <"$OUT_DIR/diff.md" >"$work/body.json"
    curl --fail --silent --show-error --max-time 30 -X POST \
        -H "Authorization: Bearer ${COMMENT_TOKEN:-}" -H "Content-Type: application/json" \
        --data @"$work/body.json" "$COMMENT_URL" >/dev/null
    echo "posted the segcheck diff to $COMMENT_URL"
fi
exit "$status"
