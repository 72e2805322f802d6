/* The viewer's entry point: picks the tabs for the data the page carries (dialogues, or evaluation runs). */
"use strict";

(function () {
  var data = CSC.data, tabs = [];
  var started = performance.now();
  if (data.kind === "dialogues") {
    tabs.push({name: "dialogues", label: "Dialogues (" + data.dialogues.length + ")", render: CSC.renderDialoguesTab});
    if (data.failures && data.failures.length) {
      tabs.push({name: "failures", label: "Failures (" + data.failures.length + ")", render: CSC.renderFailuresTab});
    }
  } else if (data.kind === "run") {
    tabs.push({name: "turns", label: "Turns (" + data.rows.length + ")", render: CSC.renderRunTab});
    tabs.push({name: "matrix", label: "Confusion matrix", render: CSC.renderMatrixTab});
    tabs.push({name: "scores", label: "Scores", render: CSC.renderScoresTab});
    var failures = [];
    data.runs.forEach(function (run) {
      (run.failures || []).forEach(function (f) { failures.push(Object.assign({file: run.name}, f)); });
    });
    if (failures.length) {
      data.failures = failures;
      tabs.push({name: "failures", label: "Failures (" + failures.length + ")", render: CSC.renderFailuresTab});
    }
  }
  CSC.tabs(tabs);
  document.body.setAttribute("data-ready", "1");
  document.body.setAttribute("data-render-ms", Math.round(performance.now() - started));
})();
