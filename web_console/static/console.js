// What the pages need beyond htmx: say why an action was refused, in the page's language.
// The server answers a refused action with an error page; its message goes in #flash.
document.addEventListener("htmx:responseError", function (event) {
  var flash = document.getElementById("flash");
  if (!flash) { return; }
  var page = new DOMParser().parseFromString(event.detail.xhr.responseText, "text/html");
  var message = page.querySelector("main [role=alert]:not(#flash)");
  flash.textContent = message ? message.textContent : event.detail.xhr.statusText;
  flash.hidden = false;
  flash.scrollIntoView({ block: "center" });
});
document.addEventListener("htmx:beforeRequest", function () {
  var flash = document.getElementById("flash");
  if (flash) { flash.hidden = true; }
});
