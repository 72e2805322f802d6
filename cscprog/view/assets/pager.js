/* cscprog pages: a pager that renders one page of a long list, so 10,000 items stay responsive. */
"use strict";

/**
 * CSC.Pager(container, render, pageSize): call set(items) after every filter change; render(item) returns a node.
 * The list element carries data-total (items after filtering) and data-page for tests and for people.
 */
CSC.Pager = function (container, render, pageSize) {
  var self = this;
  self.items = [];
  self.page = 0;
  self.size = pageSize || 20;
  self.info = CSC.h("span", {"class": "count", "data-role": "count"});
  self.prev = CSC.h("button", {"class": "btn", type: "button", "data-role": "prev",
    onclick: function () { self.go(self.page - 1); }}, "‹ prev");
  self.next = CSC.h("button", {"class": "btn", type: "button", "data-role": "next",
    onclick: function () { self.go(self.page + 1); }}, "next ›");
  self.jump = CSC.h("input", {type: "number", min: 1, value: 1, style: {width: "5em"}, "aria-label": "page",
    onchange: function () { self.go(parseInt(self.jump.value, 10) - 1); }});
  self.of = CSC.h("span", {"class": "muted"});
  self.sizeSel = CSC.h("select", {"aria-label": "per page", onchange: function () {
    self.size = parseInt(self.sizeSel.value, 10); self.go(0); }},
    [5, 10, 20, 50, 100].filter(function (n) { return n >= 10 || n === self.size; }).map(function (n) { return CSC.h("option", {value: n, selected: n === self.size}, n + " / page"); }));
  self.list = CSC.h("div", {"data-role": "list"});
  container.appendChild(CSC.h("div", {"class": "pager"}, self.info, self.prev, "page", self.jump, self.of, self.next,
    self.sizeSel));
  container.appendChild(self.list);
  self.bottom = CSC.h("div", {"class": "pager"});
  container.appendChild(self.bottom);
  self.render = render;
};

CSC.Pager.prototype.pages = function () { return Math.max(1, Math.ceil(this.items.length / this.size)); };

CSC.Pager.prototype.set = function (items, label) {
  this.items = items;
  this.label = label || "items";
  this.go(0);
};

CSC.Pager.prototype.go = function (page) {
  var self = this, pages = self.pages();
  self.page = Math.max(0, Math.min(isNaN(page) ? 0 : page, pages - 1));
  var start = self.page * self.size, end = Math.min(self.items.length, start + self.size);
  self.info.textContent = self.items.length ? (start + 1) + "–" + end + " of " + self.items.length + " " + self.label
    : "no " + self.label + " match";
  self.jump.value = self.page + 1;
  self.jump.max = pages;
  self.of.textContent = "of " + pages;
  self.prev.disabled = self.page === 0;
  self.next.disabled = self.page >= pages - 1;
  self.list.setAttribute("data-total", self.items.length);
  self.list.setAttribute("data-page", self.page);
  CSC.clear(self.list);
  var fragment = document.createDocumentFragment();
  for (var i = start; i < end; i++) fragment.appendChild(self.render(self.items[i], i));
  self.list.appendChild(fragment);
  CSC.clear(self.bottom);
  if (end - start > 5) {
    self.bottom.appendChild(CSC.h("button", {"class": "btn", type: "button", disabled: self.page >= pages - 1,
      onclick: function () { self.go(self.page + 1); window.scrollTo(0, 0); }}, "next page ›"));
  }
};
