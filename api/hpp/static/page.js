// Payloom hosted payment page: brand detection and checks before submitting
// (the server checks everything again), saved-card choice, the receipt's
// print button, and following on to a processor's authentication page. No
// card data leaves this page except in the form's own POST.
(function () {
  'use strict';

  var brands = [
    ['Elo', /^(401178|401179|431274|438935|451416|457393|457631|457632|504175|506699|5067|509|627780|636297|636368|65003[1-3]|65003[5-9]|65004|65005[01]|6504[0-3]|65048[5-9]|65049|6505[0-3]|65516[5-9]|65517|6550[0-5])/, 16],
    ['Hipercard', /^(606282|3841)/, 16],
    ['American Express', /^3[47]/, 15],
    ['Diners Club', /^(30[0-5]|309|36|38|39)/, 14],
    ['JCB', /^35(2[89]|[3-8])/, 16],
    ['Discover', /^(6011|64[4-9]|65)/, 16],
    ['UnionPay', /^62/, 16],
    ['Mastercard', /^(5[1-5]|222[1-9]|22[3-9]|2[3-6]|27[01]|2720)/, 16],
    ['Visa', /^4/, 16]
  ];

  function brandOf(digits) {
    for (var i = 0; i < brands.length; i++) {
      if (brands[i][1].test(digits)) { return brands[i]; }
    }
    return null;
  }

  function luhn(digits) {
    var sum = 0, dbl = false;
    for (var i = digits.length - 1; i >= 0; i--) {
      var d = digits.charCodeAt(i) - 48;
      if (dbl) { d *= 2; if (d > 9) { d -= 9; } }
      sum += d;
      dbl = !dbl;
    }
    return sum % 10 === 0;
  }

  function digitsOf(s) { return s.replace(/\D/g, ''); }

  function group(digits, brand) {
    var sizes = brand && brand[2] === 15 ? [4, 6, 5] : [4, 4, 4, 4, 3];
    var out = [], i = 0;
    for (var k = 0; k < sizes.length && i < digits.length; k++) {
      out.push(digits.slice(i, i + sizes[k]));
      i += sizes[k];
    }
    return out.join(' ');
  }

  function setError(input, message) {
    var el = document.getElementById(input.id + '-error');
    if (el) { el.textContent = message || ''; }
    if (message) { input.setAttribute('aria-invalid', 'true'); } else { input.removeAttribute('aria-invalid'); }
  }

  function setupForm(form) {
    var number = document.getElementById('number');
    var exp = document.getElementById('exp');
    var cvc = document.getElementById('cvc');
    var brandEl = document.getElementById('brand');
    var button = document.getElementById('pay-button');
    var newCard = document.getElementById('new-card');
    var msg = function (key) { return form.getAttribute('data-' + key) || ''; };

    number.addEventListener('input', function () {
      var d = digitsOf(number.value).slice(0, 19);
      var b = brandOf(d);
      var formatted = group(d, b);
      if (number.value !== formatted) { number.value = formatted; }
      brandEl.textContent = b && d.length > 0 ? b[0] : '';
      setError(number, '');
    });
    exp.addEventListener('input', function (e) {
      var d = digitsOf(exp.value).slice(0, 4);
      if (d.length === 1 && d > '1') { d = '0' + d; }
      var deleting = e.inputType && e.inputType.indexOf('delete') === 0;
      var v = d.length >= 2 && !(deleting && d.length === 2) ? d.slice(0, 2) + ' / ' + d.slice(2) : d;
      if (exp.value !== v) { exp.value = v; }
      setError(exp, '');
    });
    cvc.addEventListener('input', function () {
      var d = digitsOf(cvc.value).slice(0, 4);
      if (cvc.value !== d) { cvc.value = d; }
      setError(cvc, '');
    });

    var radios = form.querySelectorAll('input[name=saved]');
    function syncSaved() {
      var useNew = true;
      for (var i = 0; i < radios.length; i++) {
        if (radios[i].checked && radios[i].value !== '') { useNew = false; }
      }
      newCard.hidden = !useNew;
      newCard.disabled = !useNew;
    }
    for (var i = 0; i < radios.length; i++) { radios[i].addEventListener('change', syncSaved); }
    if (radios.length) { syncSaved(); }

    form.addEventListener('submit', function (e) {
      if (newCard.disabled) { return lock(); }
      var first = null;
      function fail(input, message) { setError(input, message); if (!first) { first = input; } }

      var d = digitsOf(number.value), b = brandOf(d);
      if (d.length === 0) { fail(number, msg('err-number-required')); }
      else if (d.length < 12 || d.length > 19 || !luhn(d) || (b && b[2] === 15 && d.length !== 15)) { fail(number, msg('err-number-invalid')); }
      else { setError(number, ''); }

      var ed = digitsOf(exp.value);
      if (ed.length === 0) { fail(exp, msg('err-exp-required')); }
      else if (ed.length !== 4 && ed.length !== 6) { fail(exp, msg('err-exp-invalid')); }
      else {
        var m = parseInt(ed.slice(0, 2), 10), y = parseInt(ed.slice(2), 10);
        if (ed.length === 4) { y += 2000; }
        var now = new Date(), cy = now.getUTCFullYear(), cm = now.getUTCMonth() + 1;
        if (m < 1 || m > 12) { fail(exp, msg('err-exp-invalid')); }
        else if (y < cy || (y === cy && m < cm)) { fail(exp, msg('err-exp-past')); }
        else { setError(exp, ''); }
      }

      var cd = digitsOf(cvc.value), want = b && b[0] === 'American Express' ? 4 : 3;
      if (cd.length !== want && !(cd.length >= 3 && cd.length <= 4 && !b)) { fail(cvc, msg('err-cvc-invalid')); }
      else { setError(cvc, ''); }

      if (first) {
        e.preventDefault();
        first.focus();
        return false;
      }
      return lock();
    });

    // One submission at a time; the browser re-enables the form if the
    // shopper comes back.
    function lock() {
      window.setTimeout(function () {
        button.disabled = true;
        button.textContent = msg('processing');
      }, 0);
      return true;
    }
    window.addEventListener('pageshow', function (ev) {
      if (ev.persisted) { window.location.reload(); }
    });
  }

  function setup() {
    var form = document.getElementById('pay-form');
    if (form) { setupForm(form); }
    var banner = document.getElementById('banner');
    if (banner && form) { document.getElementById('number').setAttribute('aria-describedby', 'banner number-error'); }
    // The processor's authentication page: go on at once (a navigation
    // of its own, which the form's form-action does not govern).
    var follow = document.getElementById('follow');
    if (follow) { window.location.replace(follow.href); }
    var print = document.getElementById('print');
    if (print) {
      print.hidden = false;
      print.addEventListener('click', function () { window.print(); });
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', setup);
  } else {
    setup();
  }
}());
