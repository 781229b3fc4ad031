(function () {
  // Filters: hide apps whose name does not contain the text, and partitions whose box is off.
  // A link can preset them: index.html#app=gromacs&hide=gpu,debug
  var text = document.getElementById("f-app");
  var boxes = document.querySelectorAll("input[data-partition]");
  var preset = {};
  location.hash.replace(/^#/, "").split("&").forEach(function (part) {
    var kv = part.split("=");
    if (kv.length === 2) { preset[kv[0]] = decodeURIComponent(kv[1]); }
  });
  if (text && preset.app) { text.value = preset.app; }
  if (preset.hide) {
    var hidden = preset.hide.split(",");
    boxes.forEach(function (box) {
      if (hidden.indexOf(box.getAttribute("data-partition")) >= 0) { box.checked = false; }
    });
  }
  function apply() {
    var wanted = text ? text.value.toLowerCase() : "";
    document.querySelectorAll("[data-app]").forEach(function (el) {
      el.classList.toggle("hidden", wanted !== "" && el.getAttribute("data-app").toLowerCase().indexOf(wanted) < 0);
    });
    boxes.forEach(function (box) {
      var name = box.getAttribute("data-partition");
      document.querySelectorAll("[data-col]").forEach(function (el) {
        if (el.getAttribute("data-col") === name) { el.classList.toggle("hidden", !box.checked); }
      });
    });
  }
  if (text) { text.addEventListener("input", apply); }
  boxes.forEach(function (box) { box.addEventListener("change", apply); });
  apply();
})();
