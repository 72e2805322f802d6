/* The blind human-evaluation page: replies A and B side by side (which system is which is not in this page),
   one choice per criterion and a comment per item, kept in this browser's localStorage, exported as JSON. */
"use strict";

(function () {
  var data = CSC.data, tax = data.taxonomy, storeKey = "cscprog-human-eval:" + data.study;
  var CHOICES = [["A", "A better"], ["tie", "tie"], ["B", "B better"]];
  var state = load();

  function load() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(storeKey) || "null");
      if (saved && saved.ratings) return saved;
    } catch (e) { /* storage unavailable or corrupt: start empty */ }
    return {rater: "", ratings: {}};
  }
  function save() {
    try { window.localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* private mode: keep in memory */ }
    progress();
  }
  function complete(id) {
    var r = state.ratings[id];
    return !!r && data.criteria.every(function (c) { return r.choices && r.choices[c.name]; });
  }

  var counter = CSC.h("span", {"class": "count", "data-role": "progress"});
  function progress() {
    var done = data.items.filter(function (it) { return complete(it.id); }).length;
    counter.textContent = done + " of " + data.items.length + " items rated";
    counter.setAttribute("data-done", done);
  }

  var rater = CSC.h("input", {type: "text", id: "rater", placeholder: "your name or initials", value: state.rater,
    oninput: function () { state.rater = rater.value.trim(); save(); }});
  var exportButton = CSC.h("button", {"class": "btn", type: "button", id: "export", onclick: exportRatings},
    "Export ratings (JSON)");
  var onlyOpen = CSC.h("input", {type: "checkbox", id: "only-open", onchange: function () { show(); }});
  document.getElementById("rater-bar").appendChild(CSC.h("div", {"class": "bar"},
    CSC.h("label", null, "Rater ", rater), counter, CSC.h("label", null, onlyOpen, " only items not yet rated"),
    exportButton));

  function exportRatings() {
    if (!state.rater) { rater.focus(); rater.placeholder = "enter your name first"; return; }
    var out = {format: "cscprog-human-eval-ratings/1", study: data.study, rater: state.rater,
      exported: new Date().toISOString(), criteria: data.criteria.map(function (c) { return c.name; }),
      items: data.items.length, ratings: {}};
    Object.keys(state.ratings).forEach(function (id) {
      var r = state.ratings[id];
      if (r && (Object.keys(r.choices || {}).length || r.comment)) out.ratings[id] = r;
    });
    var blob = new Blob([JSON.stringify(out, null, 2)], {type: "application/json"});
    var link = CSC.h("a", {href: URL.createObjectURL(blob),
      download: "ratings-" + data.study + "-" + state.rater.replace(/[^A-Za-z0-9_-]+/g, "_") + ".json"});
    document.body.appendChild(link);
    link.click();
    link.remove();
  }

  function choiceRow(item, criterion) {
    var r = state.ratings[item.id] || {}, current = (r.choices || {})[criterion.name];
    var labels = CHOICES.map(function (c) {
      var input = CSC.h("input", {type: "radio", name: item.id + "|" + criterion.name, value: c[0],
        "data-item": item.id, "data-criterion": criterion.name, checked: current === c[0],
        onchange: function () {
          var entry = state.ratings[item.id] = state.ratings[item.id] || {choices: {}, comment: ""};
          entry.choices[criterion.name] = c[0];
          labels.forEach(function (l) { l.classList.toggle("picked", l.firstChild.checked); });
          save();
          card(item.id).classList.toggle("done", complete(item.id));
        }});
      return CSC.h("label", {"class": current === c[0] ? "picked" : null}, input, c[1]);
    });
    return CSC.h("div", {"class": "crit"}, CSC.h("div", {"class": "q"}, CSC.h("b", null, criterion.name), ": " +
      criterion.question), CSC.h("div", {"class": "choices"}, labels));
  }

  function card(id) { return document.querySelector('article[data-item="' + CSS.escape(id) + '"]'); }

  function renderItem(item) {
    var r = state.ratings[item.id] || {};
    var comment = CSC.h("textarea", {placeholder: "comment (optional)", "data-item": item.id,
      oninput: function () {
        var entry = state.ratings[item.id] = state.ratings[item.id] || {choices: {}, comment: ""};
        entry.comment = comment.value;
        save();
      }});
    comment.value = r.comment || "";
    var turns = item.history;
    var history = CSC.h("details", {"class": "history", open: true},
      CSC.h("summary", {"class": "small"}, "conversation so far (" + turns.length + " turns)"),
      turns.length ? CSC.renderBands(turns, tax, item.language) : CSC.h("p", {"class": "muted small"},
        "(the conversation has not started)"));
    function side(name) {
      return CSC.h("div", {"class": "side", "data-role": "side-" + name}, CSC.h("h4", null, "Reply " + name, " ",
        item[name].k !== null && item[name].k !== undefined ? CSC.chip(tax, item[name].k) : null),
        item[name].t === null ? CSC.h("i", {"class": "muted"}, "(no reply)") : item[name].t);
    }
    return CSC.h("article", {"class": "card item" + (complete(item.id) ? " done" : ""), "data-role": "item",
      "data-item": item.id},
      CSC.h("div", {"class": "card-head"}, CSC.h("span", {"class": "id"}, "item " + item.n),
        item.domain ? CSC.h("span", {"class": "muted"}, item.domain) : null),
      history, CSC.h("p", {"class": "small muted", "data-role": "expected"}, "Which reply is the better next " +
        "supporter turn? The expected strategy here: ", CSC.chip(tax, item.expected,
          CSC.strategy(tax, item.expected) ? CSC.strategy(tax, item.expected).name : null)),
      CSC.h("div", {"class": "pair"}, side("A"), side("B")),
      data.criteria.map(function (c) { return choiceRow(item, c); }), comment);
  }

  var main = CSC.clear(document.getElementById("app"));
  main.appendChild(CSC.h("p", {"class": "muted small"}, data.instructions));
  var pager = new CSC.Pager(main, renderItem, 5);
  function show() {
    var items = onlyOpen.checked ? data.items.filter(function (it) { return !complete(it.id); }) : data.items;
    pager.set(items, "items");
  }
  show();
  progress();
  document.body.setAttribute("data-ready", "1");
})();
