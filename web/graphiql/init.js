// Starts GraphiQL on /graphql, with subscriptions over /graphql/ws. The API key goes in the
// Headers tab as {"Authorization": "Bearer <key>"}; when the person is signed in to the
// dashboard in this tab, its key is filled in. Subscriptions send the same header in
// `connection_init`.
(function () {
  "use strict";
  document.documentElement.style.height = "100%";
  document.body.style.height = "100%";
  document.body.style.margin = "0";
  var root = document.getElementById("graphiql");
  root.style.height = "100%";
  var dashboardKey = sessionStorage.getItem("vigil-api-key");
  // GraphiQL keeps its tabs, history and headers here, in memory only: its history records the
  // headers of every query run, and the key must not outlive the tab.
  var memory = new Map();
  var storage = {
    getItem: function (k) { return memory.has(k) ? memory.get(k) : null; },
    setItem: function (k, v) { memory.set(k, String(v)); },
    removeItem: function (k) { memory.delete(k); },
    clear: function () { memory.clear(); },
    get length() { return memory.size; },
  };
  function headers() {
    try {
      return JSON.parse(storage.getItem("graphiql:headers") || "{}") || {};
    } catch (e) {
      return {};
    }
  }
  var scheme = location.protocol === "https:" ? "wss:" : "ws:";
  var send = GraphiQL.createFetcher({
    url: "/graphql",
    subscriptionUrl: scheme + "//" + location.host + "/graphql/ws",
    wsConnectionParams: function () {
      var h = headers();
      var auth = h.Authorization || h.authorization;
      if (!auth && dashboardKey) auth = "Bearer " + dashboardKey;
      return auth ? { authorization: auth } : {};
    },
  });
  // Without a key every request is refused: say what to do instead of sending it.
  function fetcher(params, options) {
    var h = (options && options.headers) || headers();
    var auth = h.Authorization || h.authorization || "";
    if (!auth || auth.indexOf("<") >= 0) {
      return Promise.resolve({
        errors: [{ message: 'Add your API key in the Headers tab: {"Authorization": "Bearer <key>"}' }],
      });
    }
    return send(params, options);
  }
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      storage: storage,
      defaultEditorToolsVisibility: true,
      defaultHeaders: dashboardKey
        ? JSON.stringify({ Authorization: "Bearer " + dashboardKey }, null, 2)
        : '{\n  "Authorization": "Bearer <your API key>"\n}',
    })
  );
})();
