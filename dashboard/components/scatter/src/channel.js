// The channel: a tiny component inside an st.fragment. The map asks it (a window event) for
// one row's text or neighbours; it sends the request up as a trigger value, which reruns only
// its fragment; the fragment's answer comes back as this component's data, and is handed to
// the map (another window event). The map's own data is never sent again for a hover.

const REQUEST = 'embex-scatter-request';
const REPLY = 'embex-scatter-reply';
const ENTRIES = new WeakMap();

export default function mountChannel(component) {
  const { data, parentElement, setTriggerValue } = component;
  let entry = ENTRIES.get(parentElement);
  if (!entry) {
    entry = { gen: 0 };
    entry.listener = (event) => {
      const d = event.detail || {};
      if (d.key !== entry.key) return;
      // one trigger per kind: a click sent while a hover is on its way is not overwritten
      entry.setTriggerValue(d.kind, { row: d.row, seq: d.seq });
    };
    window.addEventListener(REQUEST, entry.listener);
    ENTRIES.set(parentElement, entry);
  }
  entry.key = data?.key;
  entry.setTriggerValue = setTriggerValue;
  const gen = ++entry.gen;
  for (const reply of data?.replies || []) {
    window.dispatchEvent(new CustomEvent(REPLY, { detail: { key: data.key, reply } }));
  }
  return () => {
    if (entry.gen !== gen) return;
    window.removeEventListener(REQUEST, entry.listener);
    ENTRIES.delete(parentElement);
  };
}
