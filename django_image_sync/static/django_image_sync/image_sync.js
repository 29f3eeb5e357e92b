// Poll the status of images still being resized and show them once done; drop
// each image's placeholder background once the image itself has loaded.
(function () {
  "use strict";
  var DELAYS = [1000, 2000, 3000, 5000, 8000, 13000];
  var ORDER = ["AVIF", "WEBP", "JPEG", "PNG"];
  var MIME = { AVIF: "image/avif", WEBP: "image/webp", JPEG: "image/jpeg", PNG: "image/png" };

  function loaded(img) {
    // The placeholder would show through transparent parts of the image.
    if (img.complete && img.naturalWidth) { img.style.backgroundImage = "none"; return; }
    img.addEventListener("load", function () { img.style.backgroundImage = "none"; });
  }

  function srcset(outputs) {
    return outputs.map(function (o) { return o.url + " " + o.width + "w"; }).join(", ");
  }

  // The same markup as the {% picture %} tag, from the JSON API's image object.
  function pictureFor(data, sizes) {
    var outputs = data.renditions || [];
    var img = document.createElement("img");
    img.className = "image-sync-img";
    img.alt = data.name || "";
    img.decoding = "async";
    if (!outputs.length) {
      img.src = data.resized_url;
      img.width = data.resized_width;
      img.height = data.resized_height;
      return img;
    }
    var groups = {};
    outputs.forEach(function (o) { (groups[o.format] = groups[o.format] || []).push(o); });
    Object.keys(groups).forEach(function (f) {
      groups[f].sort(function (a, b) { return a.width - b.width; });
    });
    var main = outputs[0];
    img.src = main.url;
    img.srcset = srcset(groups[main.format]);
    img.sizes = sizes;
    img.width = main.width;
    img.height = main.height;
    if (data.placeholder) {
      img.style.backgroundImage = "url(" + data.placeholder + ")";
      img.style.backgroundSize = "cover";
      loaded(img);
    }
    var picture = document.createElement("picture");
    picture.className = "image-sync-picture";
    ORDER.concat(Object.keys(groups)).forEach(function (f, i, all) {
      if (f === main.format || !groups[f] || all.indexOf(f) !== i) { return; }
      var source = document.createElement("source");
      source.type = MIME[f] || "";
      source.srcset = srcset(groups[f]);
      source.sizes = sizes;
      picture.appendChild(source);
    });
    picture.appendChild(img);
    return picture;
  }

  function poll(figure, attempt) {
    var url = figure.getAttribute("data-image-sync-poll");
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        if (data.status === "done" && data.resized_url) {
          var sizes = figure.getAttribute("data-image-sync-sizes") || "100vw";
          var placeholder = figure.querySelector(".image-sync-placeholder");
          if (placeholder) { placeholder.replaceWith(pictureFor(data, sizes)); }
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

  document.querySelectorAll("img.image-sync-img").forEach(function (img) {
    if (img.style.backgroundImage) { loaded(img); }
  });
  document.querySelectorAll("[data-image-sync-poll]").forEach(function (figure) {
    poll(figure, 0);
  });
})();
