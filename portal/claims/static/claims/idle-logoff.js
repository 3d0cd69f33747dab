// Automatic logoff on the server-rendered pages (claims, password), as frontend/src/idleLogoff.ts does in the
// app: after the idle time without mouse, keyboard or touch, sign out and show the sign-in form (back to this
// page after it); while the person is active, tell the server now and then so reading keeps the session.
(function () {
  'use strict';
  var seconds = Number(document.currentScript && document.currentScript.dataset.idleLogoffS);
  if (!(seconds > 0)) return;
  var keepAliveMs = Math.min(60, seconds / 4) * 1000;
  var lastKeepAlive = Date.now();
  var timer = 0;

  function csrfToken() {
    var input = document.querySelector('.logout-form input[name=csrfmiddlewaretoken]');
    return input ? input.value : '';
  }

  function signOut() {
    var next = location.pathname + location.search;
    fetch('/accounts/logout/', { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRFToken': csrfToken() } })
      .catch(function () { return undefined; })
      .then(function () { location.assign('/accounts/login/?next=' + encodeURIComponent(next)); });
  }

  function restart() {
    window.clearTimeout(timer);
    timer = window.setTimeout(signOut, seconds * 1000);
    if (Date.now() - lastKeepAlive >= keepAliveMs) {
      lastKeepAlive = Date.now();
      fetch('/api/me', { credentials: 'same-origin' }).catch(function () { return undefined; });
    }
  }

  ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart'].forEach(function (name) {
    window.addEventListener(name, restart, { passive: true, capture: true });
  });
  restart();
})();
