// cfspec report: sorting and filtering of the index. Embedded inline in report.html and
// allowed there by its SHA-256 alone (Content-Security-Policy script-src). It only reorders and
// hides existing rows and cards: it never writes markup. The state lives in the URL fragment
// (#sort=KEY&order=desc&status=kept&spec=...&metric=KEY&min=0.2&max=1), so a view can be
// linked to; a fragment without "=" (a link to a pair) leaves it alone.
"use strict";
(function () {
  var table = document.getElementById("index");
  var controls = document.getElementById("index-controls");
  if (!table || !controls) {
    return;
  }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var keys = heads.map(function (th) { return th.getAttribute("data-key"); });
  var field = {
    status: document.getElementById("f-status"),
    spec: document.getElementById("f-spec"),
    metric: document.getElementById("f-metric"),
    min: document.getElementById("f-min"),
    max: document.getElementById("f-max")
  };
  var count = document.getElementById("index-count");
  var state = {sort: "", order: "asc"};

  function cellValue(row, column) {
    return row.cells[column].getAttribute("data-v") || "";
  }

  function numeric(column) {
    return heads[column].getAttribute("data-type") === "num";
  }

  function compare(column, descending) {
    var sign = descending ? -1 : 1;
    return function (a, b) {
      var x = cellValue(a, column), y = cellValue(b, column);
      // not measured sorts last whatever the order
      if (x === "" || y === "") {
        return (x === "") - (y === "");
      }
      if (numeric(column)) {
        return sign * (parseFloat(x) - parseFloat(y));
      }
      return sign * x.localeCompare(y);
    };
  }

  function number(input) {
    var text = input.value.trim();
    return text === "" ? null : parseFloat(text);
  }

  function keep(row) {
    if (field.status.value && row.getAttribute("data-status") !== field.status.value) {
      return false;
    }
    if (field.spec.value && row.getAttribute("data-spec") !== field.spec.value) {
      return false;
    }
    var column = keys.indexOf(field.metric.value);
    if (field.metric.value === "" || column < 0) {
      return true;
    }
    var low = number(field.min), high = number(field.max);
    if (low === null && high === null) {
      return true;
    }
    var text = cellValue(row, column);
    if (text === "") {
      return false;
    }
    var value = parseFloat(text);
    return (low === null || value >= low) && (high === null || value <= high);
  }

  function apply() {
    var column = keys.indexOf(state.sort);
    var ordered = rows.slice();
    if (column >= 0) {
      ordered.sort(compare(column, state.order === "desc"));
    }
    var shown = 0;
    ordered.forEach(function (row) {
      body.appendChild(row);
      var visible = keep(row);
      row.hidden = !visible;
      shown += visible ? 1 : 0;
      var card = document.getElementById(row.getAttribute("data-card"));
      if (card) {
        card.hidden = !visible;
      }
    });
    heads.forEach(function (th, i) {
      th.setAttribute("aria-sort", i === column
        ? (state.order === "desc" ? "descending" : "ascending") : "none");
    });
    count.textContent = "showing " + shown + " of " + rows.length + " pair(s)";
  }

  function save() {
    var parts = [];
    if (state.sort) {
      parts.push("sort=" + encodeURIComponent(state.sort), "order=" + state.order);
    }
    ["status", "spec", "metric", "min", "max"].forEach(function (name) {
      if (field[name].value) {
        parts.push(name + "=" + encodeURIComponent(field[name].value));
      }
    });
    try {
      history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname);
    } catch (error) {
      // a browser that refuses it: the view still works, it just cannot be linked
    }
  }

  function load() {
    var fragment = location.hash.slice(1);
    if (fragment.indexOf("=") < 0) {
      return;
    }
    var params = new URLSearchParams(fragment);
    state.sort = params.get("sort") || "";
    state.order = params.get("order") === "desc" ? "desc" : "asc";
    ["status", "spec", "metric", "min", "max"].forEach(function (name) {
      if (params.has(name)) {
        field[name].value = params.get(name);
      }
    });
  }

  heads.forEach(function (th) {
    th.tabIndex = 0;
    th.classList.add("sortable");
    function sortBy() {
      var key = th.getAttribute("data-key");
      state.order = state.sort === key && state.order === "asc" ? "desc" : "asc";
      state.sort = key;
      apply();
      save();
    }
    th.addEventListener("click", sortBy);
    th.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        sortBy();
      }
    });
  });
  Object.keys(field).forEach(function (name) {
    field[name].addEventListener("input", function () { apply(); save(); });
  });
  controls.addEventListener("submit", function (event) { event.preventDefault(); });
  controls.hidden = false;
  load();
  apply();
}());
