/* cscprog pages: one dialogue as the paper's Figure 1 draws it: strategy chips on supporter turns, stage bands. */
"use strict";

CSC.SPEAKERS = {
  en: {S: "Supporter", C: "Customer"},
  zh: {S: "客服", C: "客户"}
};

/** One turn: speaker, strategy chip(s), text; opts.flag is a flow-rule message, opts.needle a search term. */
CSC.renderTurn = function (turn, tax, lang, opts) {
  opts = opts || {};
  var names = CSC.SPEAKERS[lang] || CSC.SPEAKERS.en, s = CSC.strategy(tax, turn.k);
  var chips = [];
  if (turn.s === "S") {
    chips.push(CSC.chip(tax, turn.k));
    (turn.x || []).forEach(function (k) { chips.push(" ", CSC.chip(tax, k)); });
  }
  var text = CSC.h("div", {"class": "text", style: s ? {"--sc": s.color} : null},
    chips.length ? [chips, " "] : null, CSC.marked(turn.t, opts.needle),
    opts.flag ? CSC.h("span", {"class": "flag", title: opts.flag, "data-role": "flow-flag"}, "⚠ " + opts.flag) : null);
  return CSC.h("div", {"class": "turn " + turn.s + (opts.flag ? " flagged" : "") + (opts.own ? " own" : ""),
    "data-role": opts.role || "turn", "data-speaker": turn.s, "data-strategy": s ? s.name : null},
    CSC.h("div", {"class": "who"}, opts.who || names[turn.s]), text);
};

/**
 * Turns grouped in stage bands: a band starts where a supporter turn's stage differs from the band's; customer
 * turns and "any"-stage strategies stay in the current band. Returns a DocumentFragment.
 */
CSC.renderBands = function (turns, tax, lang, opts) {
  opts = opts || {};
  var fragment = document.createDocumentFragment(), band = null, bandStage = null;
  function bandLabel(st) {
    return CSC.h("div", {"class": "band-label"}, st.name + (st.zh && lang === "zh" ? " · " + st.zh : ""));
  }
  function open(stage) {
    var st = stage >= 0 ? tax.stages[stage] : null;
    band = CSC.h("div", {"class": "band", "data-role": "band", "data-stage": st ? st.name : "",
      style: {borderLeftColor: st ? st.color : "#e3e6ea", background: st ? st.background : "transparent"}},
      st ? bandLabel(st) : null);
    fragment.appendChild(band);
    bandStage = stage;
  }
  turns.forEach(function (turn, i) {
    var stage = turn.s === "S" ? CSC.stageIndex(tax, turn.k) : -1;
    if (band === null) open(stage);
    else if (turn.s === "S" && stage >= 0 && stage !== bandStage) open(stage);
    else if (bandStage === -1 && stage >= 0) {
      band.style.borderLeftColor = tax.stages[stage].color;
      band.style.background = tax.stages[stage].background;
      band.setAttribute("data-stage", tax.stages[stage].name);
      band.insertBefore(bandLabel(tax.stages[stage]), band.firstChild);
      bandStage = stage;
    }
    var o = opts.turnOpts ? opts.turnOpts(turn, i) : {};
    o.needle = opts.needle;
    if (opts.flags && opts.flags[i]) o.flag = opts.flags[i];
    band.appendChild(CSC.renderTurn(turn, tax, lang, o));
  });
  return fragment;
};

/** The verdict line of a dialogue: badge, label, reason, and the judge's details folded away. */
CSC.renderVerdict = function (verdict) {
  if (!verdict || verdict.status === "none") {
    return null;
  }
  var details = verdict.details && Object.keys(verdict.details).length
    ? CSC.h("details", null, CSC.h("summary", {"class": "small"}, "verdict details"),
      CSC.h("pre", {"class": "json"}, JSON.stringify(verdict.details, null, 2)))
    : null;
  return CSC.h("div", {"class": "verdict", "data-role": "verdict", "data-status": verdict.status},
    CSC.h("span", {"class": "badge " + verdict.status}, verdict.status), " ",
    verdict.label && verdict.label !== verdict.status ? CSC.h("b", null, verdict.label) : null, " ",
    verdict.reason ? CSC.h("span", {"class": "reason"}, verdict.reason) : null, details);
};

/** A whole dialogue card: header (id, domain, language, verdict, flow-rule violations) and the banded turns. */
CSC.renderDialogue = function (rec, tax, opts) {
  opts = opts || {};
  var flags = {}, whole = [];
  rec.flow.forEach(function (v) {
    if (v.turn === null || v.turn === undefined) whole.push(v);
    else flags[v.turn] = (flags[v.turn] ? flags[v.turn] + "; " : "") + v.rule + ": " + v.message;
  });
  var head = CSC.h("div", {"class": "card-head"},
    CSC.h("span", {"class": "id"}, rec.id),
    rec.domain ? CSC.h("span", {"class": "muted"}, rec.domain) : null,
    rec.language ? CSC.h("span", {"class": "muted"}, rec.language) : null,
    CSC.h("span", {"class": "muted"}, rec.turns.length + " turns"),
    rec.flow.length ? CSC.h("span", {"class": "badge flowbad", "data-role": "flow-count"},
      rec.flow.length + " flow-rule violation" + (rec.flow.length > 1 ? "s" : "")) : null);
  var scenario = ["scenario", "profile"].map(function (key) {
    return rec[key] ? CSC.h("details", null, CSC.h("summary", {"class": "small"}, key === "profile" ?
      "customer profile" : "scenario"), CSC.h("pre", {"class": "json"}, JSON.stringify(rec[key], null, 2))) : null;
  });
  return CSC.h("article", {"class": "card", "data-role": "dialogue", "data-id": rec.id},
    head, CSC.renderVerdict(rec.verdict),
    whole.length ? CSC.h("ul", {"class": "flowlist"}, whole.map(function (v) {
      return CSC.h("li", {"data-role": "flow-whole"}, v.rule + ": " + v.message);
    })) : null,
    scenario,
    CSC.renderBands(rec.turns, tax, rec.language, {flags: flags, needle: opts.needle}));
};

/** The strategy legend: every strategy's chip with its name, grouped by stage. */
CSC.renderLegend = function (tax) {
  return CSC.h("div", {"class": "legend", "data-role": "legend"}, tax.strategies.map(function (s, k) {
    return CSC.h("span", {title: s.definition}, CSC.chip(tax, k), " " + s.name + " (" + s.stage + ")");
  }));
};
