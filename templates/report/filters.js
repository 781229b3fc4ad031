(function () {
  // Filters: hide apps whose name does not contain the text, and partitions whose box is off.
  var text = document.getElementById("f-app");
  var boxes = document.querySelectorAll("input[data-partition]");
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
