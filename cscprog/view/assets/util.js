/* cscprog pages: shared helpers. Every text from the data goes into the page as a text node, never as markup. */
"use strict";
var CSC = window.CSC = window.CSC || {};

CSC.data = JSON.parse(document.getElementById("cscprog-data").textContent);

/** Build an element: h("div", {class: "x", onclick: fn}, child, "text", [more]). */
CSC.h = function (tag, attrs) {
  var node = document.createElement(tag);
  if (attrs) {
    Object.keys(attrs).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
      else if (key === "style" && typeof value === "object") {
        Object.keys(value).forEach(function (prop) {
          if (prop.slice(0, 2) === "--") node.style.setProperty(prop, value[prop]);
          else node.style[prop] = value[prop];
        });
      }
      else node.setAttribute(key, value === true ? "" : String(value));
    });
  }
  for (var i = 2; i < arguments.length; i++) CSC.append(node, arguments[i]);
  return node;
};

CSC.append = function (node, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) { child.forEach(function (c) { CSC.append(node, c); }); return; }
  node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
};

CSC.clear = function (node) { while (node.firstChild) node.removeChild(node.firstChild); return node; };

/** The strategy at index k of the taxonomy (undefined for null). */
CSC.strategy = function (tax, k) { return k === null || k === undefined ? undefined : tax.strategies[k]; };

/** Index of the stage a strategy belongs to; -1 for "any" stage or no strategy. */
CSC.stageIndex = function (tax, k) {
  var s = CSC.strategy(tax, k);
  if (!s) return -1;
  if (!tax._stageIdx) {
    tax._stageIdx = {};
    tax.stages.forEach(function (st, i) { tax._stageIdx[st.name] = i; });
  }
  var i = tax._stageIdx[s.stage];
  return i === undefined ? -1 : i;
};

/** A coloured chip naming a strategy (abbreviation, full name on hover); grey "–" for none. */
CSC.chip = function (tax, k, label) {
  var s = CSC.strategy(tax, k);
  if (!s) return CSC.h("span", {"class": "chip none", title: "no strategy"}, label || "–");
  return CSC.h("span", {"class": "chip", style: {background: s.color}, title: s.name + (s.zh ? " / " + s.zh : "") +
    " (" + s.stage + ")", "data-strategy": s.name}, label || s.abbr);
};

/** A <select> with a first "all" option; options are [value, text] pairs; onChange gets the value. */
CSC.select = function (id, label, options, onChange, allText) {
  var sel = CSC.h("select", {id: id, onchange: function () { onChange(sel.value); }},
    CSC.h("option", {value: ""}, allText || "all"),
    options.map(function (o) { return CSC.h("option", {value: o[0]}, o[1]); }));
  return CSC.h("label", null, label, sel);
};

CSC.debounce = function (fn, ms) {
  var timer = null;
  return function () {
    var args = arguments;
    clearTimeout(timer);
    timer = setTimeout(function () { fn.apply(null, args); }, ms);
  };
};

/** Text with every case-insensitive occurrence of needle wrapped in <mark> (text nodes only). */
CSC.marked = function (text, needle) {
  if (!needle) return document.createTextNode(text);
  var span = CSC.h("span"), lower = text.toLowerCase(), at = 0, hit;
  while ((hit = lower.indexOf(needle, at)) !== -1) {
    span.appendChild(document.createTextNode(text.slice(at, hit)));
    span.appendChild(CSC.h("mark", null, text.slice(hit, hit + needle.length)));
    at = hit + needle.length;
  }
  span.appendChild(document.createTextNode(text.slice(at)));
  return span;
};

CSC.sorted = function (values) {
  return values.filter(function (v, i, all) { return all.indexOf(v) === i; }).sort();
};

CSC.fmt = function (x, digits) {
  return x === null || x === undefined ? "–" : (typeof x === "number" ? x.toFixed(digits === undefined ? 2 : digits) : String(x));
};

/** Tabs in the header: [{name, render(main)}]; the first is shown. */
CSC.tabs = function (tabs) {
  var nav = document.getElementById("tabs"), main = document.getElementById("app"), buttons = [];
  function show(i) {
    buttons.forEach(function (b, j) { b.classList.toggle("active", i === j); });
    CSC.clear(main);
    tabs[i].render(main);
    CSC.currentTab = tabs[i].name;
  }
  tabs.forEach(function (tab, i) {
    var button = CSC.h("button", {type: "button", "data-tab": tab.name, onclick: function () { show(i); }}, tab.label);
    buttons.push(button);
    nav.appendChild(button);
  });
  CSC.showTab = function (name) { tabs.forEach(function (t, i) { if (t.name === name) show(i); }); };
  show(0);
};
