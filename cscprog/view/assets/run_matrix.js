/* The viewer's confusion matrix (a cell opens the turns behind it) and the runs' headline scores. */
"use strict";

CSC.confusion = function (runIndex) {
  var data = CSC.data, n = data.taxonomy.strategies.length, m = [];
  for (var g = 0; g < n; g++) { m.push([]); for (var p = 0; p <= n; p++) m[g].push(0); }
  data.rows.forEach(function (row) {
    if (row.g === null) return;
    var p = row.p[runIndex];
    m[row.g][p === null ? n : p] += 1;
  });
  return m;
};

CSC.renderMatrixTab = function (main) {
  var data = CSC.data, tax = data.taxonomy, st = CSC.runState, n = tax.strategies.length;
  var holder = CSC.h("div");
  function draw(runIndex) {
    var m = CSC.confusion(runIndex), max = 1;
    m.forEach(function (r) { r.forEach(function (c) { max = Math.max(max, c); }); });
    var head = CSC.h("tr", null, CSC.h("th", {"class": "l"}, "gold \\ predicted"),
      tax.strategies.map(function (s, k) { return CSC.h("th", {title: s.name}, CSC.chip(tax, k)); }),
      CSC.h("th", {title: "no usable prediction"}, "failed"), CSC.h("th", null, "total"));
    var body = m.map(function (counts, g) {
      var total = counts.reduce(function (a, b) { return a + b; }, 0);
      if (!total) return null;
      return CSC.h("tr", null, CSC.h("th", {"class": "l"}, CSC.chip(tax, g), " " + tax.strategies[g].name),
        counts.map(function (c, p) {
          var shade = c ? Math.round(20 + 60 * c / max) : 0;
          return CSC.h("td", {"class": "cell" + (p === g ? " diag" : ""), "data-gold": g, "data-pred": p === n ? -1 : p,
            "data-count": c, title: tax.strategies[g].name + " → " + (p === n ? "failed" : tax.strategies[p].name) + ": " + c,
            style: {background: c ? (p === g ? "hsl(120,45%," + (100 - shade / 2) + "%)" : "hsl(0,60%," + (100 - shade / 2) + "%)") : ""},
            onclick: function () {
              st.outcome = [];
              st.gold = String(g);
              st.pred = String(p === n ? -1 : p);
              st.predRun = runIndex;
              st.same = "";
              st.search = "";
              CSC.showTab("turns");
            }}, c || "");
        }),
        CSC.h("td", null, total));
    });
    CSC.clear(holder).appendChild(CSC.h("table", {"class": "grid matrix", "data-role": "matrix", "data-run": runIndex},
      CSC.h("thead", null, head), CSC.h("tbody", null, body)));
  }
  main.appendChild(CSC.h("p", {"class": "muted small"}, "Rows: gold strategy; columns: predicted. Click a cell to " +
    "see the turns behind it. Counts are supporter turns scored by " + (data.runs.length > 1 ? "every run" : "the run") + "."));
  if (data.runs.length > 1) {
    main.appendChild(CSC.h("div", {"class": "filters"}, CSC.h("label", null, "run ", CSC.h("select", {id: "m-run",
      onchange: function (e) { draw(+e.target.value); }}, data.runs.map(function (r, i) {
        return CSC.h("option", {value: i}, r.name); })))));
  }
  main.appendChild(holder);
  draw(0);
};

CSC.renderScoresTab = function (main) {
  var data = CSC.data, keys = ["accuracy", "macro_f1", "bleu2", "bleu4", "rouge_l", "semantic", "n", "failures"];
  main.appendChild(CSC.h("p", {"class": "muted small"}, "Scores from each run's result.json, over all the turns " +
    "it scored (cscprog.evaluation.metrics: corpus BLEU, mean ROUGE-L, strategy accuracy and macro-F1 in %)."));
  main.appendChild(CSC.h("table", {"class": "grid scoreboard", "data-role": "scores"},
    CSC.h("tr", null, CSC.h("th", {"class": "l"}, "run"), CSC.h("th", {"class": "l"}, "context"),
      CSC.h("th", {"class": "l"}, "model"), keys.map(function (k) { return CSC.h("th", null, k); })),
    data.runs.map(function (run) {
      return CSC.h("tr", null, CSC.h("td", {"class": "l"}, run.name), CSC.h("td", {"class": "l"}, run.context),
        CSC.h("td", {"class": "l"}, run.model || "–"), keys.map(function (k) {
          return CSC.h("td", null, CSC.fmt(run.scores[k], k === "n" || k === "failures" ? 0 : 2));
        }));
    })));
  var agree = data.rows.length ? data.rows.map(function (row) {
    return data.runs.map(function (_, i) { return CSC.isRight(row, i) ? 1 : 0; });
  }) : [];
  if (data.runs.length === 2 && agree.length) {
    var c = {"11": 0, "10": 0, "01": 0, "00": 0};
    agree.forEach(function (a) { c["" + a[0] + a[1]] += 1; });
    main.appendChild(CSC.h("p", null, "On the " + agree.length + " shared turns: both right " + c["11"] + ", only " +
      data.runs[0].name + " right " + c["10"] + ", only " + data.runs[1].name + " right " + c["01"] + ", both wrong " +
      c["00"] + "."));
  }
};
