/* The viewer's run tab: every scored supporter turn with its history, gold and predicted strategy and reply. */
"use strict";

CSC.runState = {outcome: [], gold: "", pred: "", predRun: 0, domain: "", same: "", search: ""};

CSC.isRight = function (row, i) { return row.p[i] !== null && row.p[i] === row.g; };

CSC.rowKey = function (row) { return row.d + ":" + row.k; };

/** The history before a row's turn; for a generated-context run, its own earlier supporter turns replace gold. */
CSC.history = function (row, runIndex) {
  var data = CSC.data, rec = data.dialogues[row.d], run = data.runs[runIndex];
  var turns = rec.turns.slice(0, row.k), own = {};
  if (run && run.context === "generated") {
    if (!data._byKey) {
      data._byKey = {};
      data.rows.forEach(function (r) { data._byKey[CSC.rowKey(r)] = r; });
    }
    turns = turns.map(function (t, i) {
      var mine = t.s === "S" ? data._byKey[row.d + ":" + i] : null;
      if (!mine) return t;
      own[i] = true;
      return {s: "S", k: mine.p[runIndex], x: [], t: mine.r[runIndex] || "(no reply: " + (mine.f[runIndex] || "") + ")"};
    });
  }
  return {turns: turns, own: own};
};

CSC.renderRow = function (row) {
  var data = CSC.data, tax = data.taxonomy, rec = data.dialogues[row.d], runs = data.runs;
  var gen = runs.length === 1 && runs[0].context === "generated";
  var mixed = runs.length > 1 && runs.some(function (run) { return run.context === "generated"; });
  var hist = CSC.history(row, gen ? 0 : -1);
  var needle = CSC.runState.needle;
  var head = CSC.h("div", {"class": "card-head"},
    CSC.h("span", {"class": "id"}, rec.id), CSC.h("span", {"class": "muted"}, "turn " + row.k),
    rec.domain ? CSC.h("span", {"class": "muted"}, rec.domain) : null,
    runs.map(function (run, i) {
      var ok = CSC.isRight(row, i);
      return CSC.h("span", {"class": "badge " + (ok ? "passed" : "rejected")},
        (runs.length > 1 ? run.name + ": " : "") + (ok ? "✓ strategy" : (row.p[i] === null ? "✗ failed" : "✗ strategy")));
    }));
  var history = CSC.h("details", {"class": "history", open: hist.turns.length <= 6 ? true : null},
    CSC.h("summary", {"class": "small"}, "history: " + hist.turns.length + " turns" +
      (gen ? " (the model's own earlier supporter turns, generated context)" :
        mixed ? " (gold; a generated-context run answered its own earlier supporter turns, shown with its reply)" :
        "")),
    hist.turns.length ? CSC.renderBands(hist.turns, tax, rec.language, {needle: needle, turnOpts: function (t, i) {
      return {role: "history-turn", own: hist.own[i]};
    }}) : CSC.h("p", {"class": "muted small"}, "(the conversation has not started)"));
  var gold = CSC.h("div", {"class": "reply gold", "data-role": "gold"},
    CSC.h("h4", null, "gold", CSC.chip(tax, row.g, CSC.strategy(tax, row.g) ? CSC.strategy(tax, row.g).name : null)),
    CSC.marked(rec.turns[row.k].t, needle));
  var replies = runs.map(function (run, i) {
    var ok = CSC.isRight(row, i), failed = row.p[i] === null || !!row.f[i];
    var s = CSC.strategy(tax, row.p[i]);
    var own = mixed && run.context === "generated" ? CSC.history(row, i) : null;
    var ownTurns = own ? own.turns.filter(function (t, j) { return own.own[j]; }) : [];
    var ownHistory = ownTurns.length ? CSC.h("details", {"class": "small", "data-role": "own-history"},
      CSC.h("summary", null, "its own earlier supporter turns (" + ownTurns.length + ", generated context)"),
      ownTurns.map(function (t) {
        return CSC.h("p", {"class": "own", "data-role": "own-turn"}, CSC.chip(tax, t.k), " ", t.t);
      })) : null;
    return CSC.h("div", {"class": "reply " + (failed ? "failed" : ok ? "right" : "wrong"), "data-role": "prediction",
      "data-correct": ok ? "1" : "0"},
      CSC.h("h4", null, run.name, CSC.chip(tax, row.p[i], s ? s.name : "failed"), ok ? "✓" : "✗"), ownHistory,
      row.r[i] !== null && row.r[i] !== undefined ? CSC.marked(row.r[i], needle) : CSC.h("i", {"class": "muted"}, "(no reply)"),
      row.f[i] ? CSC.h("div", {"class": "small", style: {color: "#7a4100"}}, "failure: " + row.f[i]) : null,
      CSC.h("div", {"class": "scores"}, "ROUGE-L " + CSC.fmt(row.sc[i][0], 1) + " · BLEU-2 " + CSC.fmt(row.sc[i][1], 1)));
  });
  return CSC.h("article", {"class": "card", "data-role": "row", "data-id": rec.id, "data-turn": row.k},
    head, history, CSC.h("div", {"class": "row-grid", style: {"--cols": runs.length + 1}}, gold, replies));
};

CSC.rowText = function (row) {
  if (row._text === undefined) {
    var rec = CSC.data.dialogues[row.d];
    row._text = (rec.id + "\n" + rec.turns.slice(0, row.k + 1).map(function (t) { return t.t; }).join("\n") + "\n" +
      row.r.join("\n")).toLowerCase();
  }
  return row._text;
};

CSC.filterRows = function () {
  var st = CSC.runState, data = CSC.data;
  var gold = st.gold === "" ? null : +st.gold, pred = st.pred === "" ? null : +st.pred;
  st.needle = (st.search || "").trim().toLowerCase();
  return data.rows.filter(function (row) {
    for (var i = 0; i < data.runs.length; i++) {
      var want = st.outcome[i];
      if (!want) continue;
      var right = CSC.isRight(row, i), failed = row.p[i] === null || !!row.f[i];
      if (want === "correct" && !right) return false;
      if (want === "wrong" && right) return false;
      if (want === "failed" && !failed) return false;
    }
    if (gold !== null && row.g !== gold) return false;
    if (pred !== null && (pred === -1 ? row.p[st.predRun] !== null : row.p[st.predRun] !== pred)) return false;
    if (st.domain && (data.dialogues[row.d].domain || "(none)") !== st.domain) return false;
    if (st.same === "same" && row.p[0] !== row.p[1]) return false;
    if (st.same === "different" && row.p[0] === row.p[1]) return false;
    if (st.needle && CSC.rowText(row).indexOf(st.needle) === -1) return false;
    return true;
  });
};

CSC.renderRunTab = function (main) {
  var data = CSC.data, tax = data.taxonomy, st = CSC.runState;
  var strategies = tax.strategies.map(function (s, k) { return [k, s.abbr + " " + s.name]; });
  var domains = CSC.sorted(data.dialogues.map(function (d) { return d.domain || "(none)"; }));
  var outcomes = data.runs.map(function (run, i) {
    return CSC.select("f-outcome-" + i, (data.runs.length > 1 ? run.name + ": " : "") + "prediction",
      [["correct", "correct"], ["wrong", "wrong"], ["failed", "failed"]], function (v) { st.outcome[i] = v; apply(); });
  });
  var search = CSC.h("input", {type: "search", id: "f-search", placeholder: "search text or id", value: st.search,
    oninput: CSC.debounce(function () { st.search = search.value; apply(); }, 200)});
  var predLabel = "predicted" + (data.runs.length > 1 ? " (" + data.runs[st.predRun].name + ")" : "");
  main.appendChild(CSC.h("p", {"class": "muted small"}, "Source: " + data.source + " · context: " +
    data.runs.map(function (r) { return r.name + " " + r.context; }).join(", ") +
    (data.runs.length > 1 ? " · turns scored by every run: " + data.rows.length +
      (data.only.some(Boolean) ? " (not shared: " + data.only.join(" / ") + ")" : "") : "")));
  main.appendChild(CSC.h("div", {"class": "filters", "data-role": "filters"}, outcomes,
    data.runs.length === 2 ? CSC.select("f-same", "A vs B", [["same", "same strategy"], ["different", "different"]],
      function (v) { st.same = v; apply(); }) : null,
    CSC.select("f-gold", "gold", strategies, function (v) { st.gold = v; apply(); }),
    CSC.select("f-pred", predLabel, strategies.concat([[-1, "(failed)"]]), function (v) { st.pred = v; apply(); }),
    CSC.select("f-domain", "domain", domains.map(function (d) { return [d, d]; }), function (v) { st.domain = v; apply(); }),
    search));
  var summary = CSC.h("p", {"class": "muted small", "data-role": "summary"});
  main.appendChild(summary);
  var pager = new CSC.Pager(main, CSC.renderRow, 20);
  function apply() {
    var rows = CSC.filterRows();
    summary.textContent = rows.length + " of " + data.rows.length + " turns";
    summary.setAttribute("data-rows", rows.length);
    pager.set(rows, "turns");
  }
  data.runs.forEach(function (run, i) { if (st.outcome[i]) document.getElementById("f-outcome-" + i).value = st.outcome[i]; });
  [["f-gold", st.gold], ["f-pred", st.pred], ["f-domain", st.domain], ["f-same", st.same]].forEach(function (p) {
    var el = document.getElementById(p[0]);
    if (el) el.value = p[1];
  });
  apply();
};
