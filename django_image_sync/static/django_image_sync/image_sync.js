// Poll the status of images still being resized and show them once done.
(function () {
  "use strict";
  var DELAYS = [1000, 2000, 3000, 5000, 8000, 13000];

  function poll(figure, attempt) {
    var url = figure.getAttribute("data-image-sync-poll");
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        if (data.status === "done" && data.resized_url) {
          var img = document.createElement("img");
          img.src = data.resized_url;
          img.width = data.resized_width;
          img.height = data.resized_height;
          img.alt = data.name || "";
          var placeholder = figure.querySelector(".image-sync-placeholder");
          if (placeholder) { placeholder.replaceWith(img); }
          figure.className = figure.className.replace(/image-sync-\w+$/, "image-sync-done");
          return;
        }
        if (data.status === "failed") {
          var label = figure.querySelector(".image-sync-placeholder");
          if (label) { label.textContent = "Failed"; }
          figure.className = figure.className.replace(/image-sync-\w+$/, "image-sync-failed");
          return;
        }
        var delay = DELAYS[Math.min(attempt, DELAYS.length - 1)];
        window.setTimeout(function () { poll(figure, attempt + 1); }, delay);
      })
      .catch(function () {});
  }

  document.querySelectorAll("[data-image-sync-poll]").forEach(function (figure) {
    poll(figure, 0);
  });
})();
