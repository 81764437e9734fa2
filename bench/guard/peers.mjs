// Scores a JSON-lines file of {text, label, family} rows with open-source prompt-injection
// detectors from npm and prints precision, recall and false-positive rate, overall and per
// source family. The rows come from warden's eval command (-export), written under /tmp;
// nothing here contains or stores data set rows.
//
//   node bench/guard/peers.mjs /tmp/injection-val.jsonl
//
// Detectors (installed by bench/guard/run-peers.sh into a temporary prefix):
//   vard          @andersmyrmel/vard 1.2.0 — pattern-based; default preset (moderate, threshold 0.7),
//                 maxLength raised to 100,000 so that long documents are scanned, not rejected
//   llm_guardrail llm_guardrail 2.1.2 — TF-IDF + logistic regression; checkInjection, detected flag
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const file = process.argv[2];
const prefix = process.env.PEER_PREFIX;
if (!file || !prefix) {
  console.error("usage: PEER_PREFIX=DIR node peers.mjs ROWS.jsonl");
  process.exit(2);
}
// Both packages are ES modules; import their entry points by path inside the prefix.
const entry = (name) => {
  const dir = path.join(prefix, "node_modules", name);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  return pathToFileURL(path.join(dir, pkg.module ?? pkg.main ?? "index.js")).href;
};
const vardMod = await import(entry("@andersmyrmel/vard"));
const guard = await import(entry("llm_guardrail"));

const vard = vardMod.vard.moderate().maxLength(100000);
const detectors = {
  vard: async (t) => !vard.safeParse(t).safe,
  llm_guardrail: async (t) => (await guard.checkInjection(t)).detected,
};

const rows = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));

function metrics() {
  return { tp: 0, fp: 0, tn: 0, fn: 0 };
}
function add(m, attack, pred) {
  if (attack && pred) m.tp++;
  else if (attack) m.fn++;
  else if (pred) m.fp++;
  else m.tn++;
}
const r = (a, b) => (b === 0 ? 0 : a / b);
function line(m) {
  return `precision ${r(m.tp, m.tp + m.fp).toFixed(3)}  recall ${r(m.tp, m.tp + m.fn).toFixed(3)}  FPR ${r(m.fp, m.fp + m.tn).toFixed(4)}  (TP ${m.tp} FP ${m.fp} TN ${m.tn} FN ${m.fn})`;
}

for (const [name, detect] of Object.entries(detectors)) {
  const all = metrics();
  const fam = {};
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  for (const row of rows) {
    const attack = row.label === "attack";
    let pred;
    try {
      pred = await detect(row.text);
    } catch (e) {
      pred = true; // a detector that throws on an input blocks it
    }
    bytes += Buffer.byteLength(row.text);
    add(all, attack, pred);
    fam[row.family] ??= metrics();
    add(fam[row.family], attack, pred);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`\n${name}: ${rows.length} rows\n  ${line(all)}`);
  console.log(`  time ${secs.toFixed(2)} s, ${(bytes / secs / 1e6).toFixed(2)} MB/s, ${((secs / rows.length) * 1e6).toFixed(0)} µs/row`);
  for (const k of Object.keys(fam).sort()) {
    const m = fam[k];
    const pos = m.tp + m.fn, neg = m.fp + m.tn;
    const s = neg === 0 ? `attacks ${pos}  recall ${r(m.tp, pos).toFixed(3)}`
      : pos === 0 ? `benign ${neg}  FPR ${r(m.fp, neg).toFixed(4)}`
      : `attacks ${pos} recall ${r(m.tp, pos).toFixed(3)}  benign ${neg} FPR ${r(m.fp, neg).toFixed(4)}`;
    console.log(`  ${k.padEnd(48)} ${s}`);
  }
}
