/* The widgets' language follows the page's switch, not the browser's.
 *
 * Dash's date pickers format months and weekdays with date-fns, taking the locale from
 * window.dateFns.locale: the one matching navigator.languages, else the first there is, else
 * English. vendor/date-fns-…-zh-CN.min.js (loaded after this file) registers zhCN; apply() keeps it
 * aside and leaves exactly the switch's language there: {zhCN} for 中文, nothing (English) for
 * English, whatever the browser's own language. It also sets <html lang>.
 */
(function () {
  "use strict";
  var kept = {};

  function apply(lang) {
    var fns = window.dateFns = window.dateFns || {};
    var loaded = fns.locale || {};
    Object.keys(loaded).forEach(function (k) { kept[k] = loaded[k]; });
    fns.locale = (lang === "en" || !kept.zhCN) ? {} : {zhCN: kept.zhCN};
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    return lang;
  }

  window.gridwatch = window.gridwatch || {};
  window.gridwatch.locale = {apply: apply};
}());
