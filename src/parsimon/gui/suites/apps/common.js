// Shared by the Parsimon task apps: state in localStorage (so Home / open / Back keep it), the
// oracle's view of it (window.__APP_STATE__), touch gestures for the phone (long press, swipe), the
// phone's Menu button, and a ready flag.
(function () {
  const App = {
    name: null,
    state: null,
    render: () => {},
    key() { return 'parsimon.app.' + this.name; },
    setup(name, render) {
      this.name = name;
      this.render = render;
      const raw = localStorage.getItem(this.key());
      this.state = raw ? JSON.parse(raw) : null;
      Object.defineProperty(window, '__APP_STATE__', {get: () => App.state, configurable: true});
      if (this.state) this.render();
      window.__APP_READY__ = true;
    },
    load(state) {  // the environment loads a seeded scenario
      this.state = JSON.parse(JSON.stringify(state));
      this.save();
      this.render();
    },
    save() { localStorage.setItem(this.key(), JSON.stringify(this.state)); },
    commit(mutator) {
      if (this.state && this.state.locked) return;
      mutator(this.state);
      this.save();
      this.render();
    },
  };
  window.parsimonApp = App;
  window.parsimonState = (name) => JSON.parse(localStorage.getItem('parsimon.app.' + name) || 'null');

  // long press (touch held 600 ms without moving) and horizontal swipes, on elements that ask for them
  let start = null, timer = null;
  document.addEventListener('touchstart', (ev) => {
    const t = ev.touches[0];
    const target = ev.target.closest('[data-longpress], [data-swipe]');
    start = {x: t.clientX, y: t.clientY, target, fired: false};
    if (target && target.hasAttribute('data-longpress')) {
      timer = setTimeout(() => {
        start.fired = true;
        target.dispatchEvent(new CustomEvent('longpress', {bubbles: true}));
      }, 600);
    }
  }, {passive: true});
  document.addEventListener('touchmove', (ev) => {
    if (!start) return;
    const t = ev.touches[0];
    if (Math.abs(t.clientX - start.x) > 10 || Math.abs(t.clientY - start.y) > 10) clearTimeout(timer);
  }, {passive: true});
  document.addEventListener('touchend', (ev) => {
    clearTimeout(timer);
    if (!start) return;
    const t = ev.changedTouches[0];
    const dx = t.clientX - start.x, dy = t.clientY - start.y;
    let swiped = false;
    if (start.target && start.target.hasAttribute('data-swipe') && Math.abs(dx) > 60 && Math.abs(dy) < 40) {
      swiped = true;
      start.target.dispatchEvent(new CustomEvent('swipe', {bubbles: true, detail: dx < 0 ? 'left' : 'right'}));
    }
    // a long press or a swipe is not also a tap
    if (start.fired || swiped) ev.preventDefault();
    start = null;
  });

  // the phone's Menu system button opens the app's menu, if it has one
  window.addEventListener('systembutton', (ev) => {
    if (ev.detail !== 'Menu') return;
    const menu = document.getElementById('app-menu');
    if (menu) menu.hidden = !menu.hidden;
  });

  window.esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
})();
