/* The viewer's dialogue tab: filters (strategy, stage, domain, verdict, flow, text) over a paged list. */
"use strict";

CSC.dialogueIndex = function (data) {
  // per dialogue: the strategies and stages it uses, computed once
  var tax = data.taxonomy;
  data.dialogues.forEach(function (rec) {
    var ks = {}, stages = {};
    rec.turns.forEach(function (t) {
      if (t.s !== "S") return;
      [t.k].concat(t.x || []).forEach(function (k) {
        if (k === null || k === undefined) return;
        ks[k] = true;
        var st = CSC.stageIndex(tax, k);
        if (st >= 0) stages[st] = true;
      });
    });
    rec._ks = ks;
    rec._stages = stages;
  });
};

CSC.searchText = function (rec) {
  if (rec._text === undefined) {
    rec._text = (rec.id + "\n" + rec.turns.map(function (t) { return t.t; }).join("\n")).toLowerCase();
  }
  return rec._text;
};

CSC.renderDialoguesTab = function (main) {
  var data = CSC.data, tax = data.taxonomy, state = CSC.dialogueState = CSC.dialogueState || {};
  if (!data._indexed) { CSC.dialogueIndex(data); data._indexed = true; }
  var domains = CSC.sorted(data.dialogues.map(function (d) { return d.domain || "(none)"; }));
  var verdicts = CSC.sorted(data.dialogues.map(function (d) { return d.verdict.status; }));
  var languages = CSC.sorted(data.dialogues.map(function (d) { return d.language || "(none)"; }));
  var candidates = CSC.sorted(data.dialogues.filter(function (d) { return d.candidate; })
    .map(function (d) { return d.candidate; }));
  var search = CSC.h("input", {type: "search", id: "f-search", placeholder: "search text or id",
    value: state.search || "", oninput: CSC.debounce(function () { state.search = search.value; apply(); }, 200)});
  var filters = CSC.h("div", {"class": "filters", "data-role": "filters"},
    CSC.select("f-strategy", "strategy", tax.strategies.map(function (s, k) { return [k, s.abbr + " " + s.name]; }),
      function (v) { state.strategy = v; apply(); }),
    CSC.select("f-stage", "stage", tax.stages.map(function (s, i) { return [i, s.name]; }),
      function (v) { state.stage = v; apply(); }),
    CSC.select("f-domain", "domain", domains.map(function (d) { return [d, d]; }),
      function (v) { state.domain = v; apply(); }),
    languages.length > 1 ? CSC.select("f-language", "language", languages.map(function (d) { return [d, d]; }),
      function (v) { state.language = v; apply(); }) : null,
    candidates.length ? CSC.select("f-candidate", "candidate", candidates.map(function (c) { return [c, c]; }),
      function (v) { state.candidate = v; apply(); }) : null,
    CSC.select("f-verdict", "verdict", verdicts.map(function (v) { return [v, v]; }),
      function (v) { state.verdict = v; apply(); }),
    CSC.select("f-flow", "flow rules", [["bad", "with violations"], ["ok", "without violations"]],
      function (v) { state.flow = v; apply(); }),
    search);
  main.appendChild(CSC.h("p", {"class": "muted small"}, "Source: " + data.source + " · " + data.dialogues.length +
    " dialogues · supporter turns coloured by strategy, stage bands on the left, ⚠ marks flow-rule violations."));
  main.appendChild(CSC.renderLegend(tax));
  main.appendChild(filters);
  var summary = CSC.h("p", {"class": "muted small", "data-role": "summary"});
  main.appendChild(summary);
  var pager = new CSC.Pager(main, function (rec) {
    return CSC.renderDialogue(rec, tax, {needle: state.needle});
  }, 20);

  function apply() {
    var k = state.strategy === undefined || state.strategy === "" ? null : +state.strategy;
    var st = state.stage === undefined || state.stage === "" ? null : +state.stage;
    var needle = (state.search || "").trim().toLowerCase();
    state.needle = needle;
    var shown = data.dialogues.filter(function (rec) {
      if (k !== null && !rec._ks[k]) return false;
      if (st !== null && !rec._stages[st]) return false;
      if (state.domain && (rec.domain || "(none)") !== state.domain) return false;
      if (state.language && (rec.language || "(none)") !== state.language) return false;
      if (state.verdict && rec.verdict.status !== state.verdict) return false;
      if (state.candidate && rec.candidate !== state.candidate) return false;
      if (state.flow === "bad" && !rec.flow.length) return false;
      if (state.flow === "ok" && rec.flow.length) return false;
      if (needle && CSC.searchText(rec).indexOf(needle) === -1) return false;
      return true;
    });
    var turns = 0;
    shown.forEach(function (rec) { turns += rec.turns.length; });
    summary.textContent = shown.length + " of " + data.dialogues.length + " dialogues, " + turns + " turns";
    summary.setAttribute("data-dialogues", shown.length);
    summary.setAttribute("data-turns", turns);
    pager.set(shown, "dialogues");
  }
  ["strategy", "stage", "domain", "language", "candidate", "verdict", "flow"].forEach(function (name) {
    var sel = document.getElementById("f-" + name);
    if (sel && state[name] !== undefined) sel.value = state[name];
  });
  apply();
};

CSC.renderFailuresTab = function (main) {
  var failures = CSC.data.failures || [];
  main.appendChild(CSC.h("p", {"class": "muted"}, failures.length + " item(s) the run could not finish " +
    "(retried by --resume)."));
  failures.forEach(function (f) {
    var rest = Object.assign({}, f);
    ["item_id", "error", "reason", "role", "file"].forEach(function (k) { delete rest[k]; });
    main.appendChild(CSC.h("article", {"class": "card failure", "data-role": "failure"},
      CSC.h("div", {"class": "card-head"}, CSC.h("span", {"class": "id"}, String(f.item_id)),
        f.error ? CSC.h("span", {"class": "badge unjudged"}, f.error) : null,
        f.role ? CSC.h("span", {"class": "muted"}, "role " + f.role) : null,
        f.file ? CSC.h("span", {"class": "muted small"}, f.file) : null),
      CSC.h("div", null, f.reason || ""),
      Object.keys(rest).length ? CSC.h("details", null, CSC.h("summary", {"class": "small"}, "details"),
        CSC.h("pre", {"class": "json"}, JSON.stringify(rest, null, 2))) : null));
  });
};
