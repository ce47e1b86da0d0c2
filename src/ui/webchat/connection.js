// The web chat's side of the protocol (docs/channels.md, "Web chat"): one socket to
// /webchat/ws that reconnects with backoff, says hello with the last seq it holds, and keeps
// every message in an outbox (in localStorage) until its reply arrives, resending it after
// each reconnect. The server dedupes by clientMessageId, so a resend never runs a second turn.

const SESSION_KEY = 'clawmesh.webchat.session';
const API_KEY = 'clawmesh.webchat.key';
const OUTBOX_KEY = 'clawmesh.webchat.outbox';
const MAX_RETRIES = 5;

/** A random id of `bytes` bytes, as hex (crypto.randomUUID needs a secure context; this does not). */
export function randomId(bytes = 16) {
  const buffer = new Uint8Array(bytes);
  crypto.getRandomValues(buffer);
  return Array.from(buffer, (b) => b.toString(16).padStart(2, '0')).join('');
}

function readJson(storage, key, fallback) {
  try {
    const value = JSON.parse(storage.getItem(key) ?? 'null');
    return value ?? fallback;
  } catch {
    return fallback;
  }
}

/**
 * Opens the chat connection.
 * @param {{ url: string, storage?: Storage, onEvent: (event: object) => void, backoff?: { baseMs: number, maxMs: number } }} options
 */
export function createChatConnection(options) {
  const storage = options.storage ?? localStorage;
  const emit = options.onEvent;
  const baseMs = options.backoff?.baseMs ?? 250;
  const maxMs = options.backoff?.maxMs ?? 10_000;

  let sessionId = storage.getItem(SESSION_KEY);
  if (!sessionId || !/^[A-Za-z0-9_-]{16,128}$/.test(sessionId)) {
    sessionId = randomId(16);
    storage.setItem(SESSION_KEY, sessionId);
  }
  const outboxKey = `${OUTBOX_KEY}.${sessionId}`;
  /** @type {{ clientMessageId: string, text: string, tries: number }[]} */
  let outbox = readJson(storage, outboxKey, []);
  const saveOutbox = () => storage.setItem(outboxKey, JSON.stringify(outbox));

  let socket = null;
  let ready = false;
  let lastSeq = 0;
  let attempt = 0;
  let timer = null;
  let heartbeat = null;
  let lastHeard = 0;
  let stopped = false;
  let needsKey = false;

  const status = (state, detail = {}) => emit({ type: 'status', state, ...detail });

  const sendFrame = (frame) => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  };
  const sendQueued = (item) => {
    if (ready) sendFrame({ type: 'message', clientMessageId: item.clientMessageId, text: item.text });
  };

  const scheduleReconnect = () => {
    if (stopped || needsKey || timer) return;
    const delay = Math.min(maxMs, baseMs * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt += 1;
    status('offline', { retryInMs: Math.round(delay), queued: outbox.length });
    timer = setTimeout(() => {
      timer = null;
      connect();
    }, delay);
  };

  const settle = (clientMessageId) => {
    const before = outbox.length;
    outbox = outbox.filter((item) => item.clientMessageId !== clientMessageId);
    if (outbox.length !== before) saveOutbox();
  };

  const onFrame = (frame) => {
    lastHeard = Date.now();
    if (typeof frame.seq === 'number' && frame.seq > lastSeq) lastSeq = frame.seq;
    switch (frame.type) {
      case 'ready':
        ready = true;
        attempt = 0;
        needsKey = false;
        if (frame.reset) lastSeq = 0;
        emit(frame);
        status('online', { conversationId: frame.conversationId });
        for (const item of outbox) sendQueued(item);
        return;
      case 'reply':
        if (frame.replyTo) settle(frame.replyTo);
        emit(frame);
        return;
      case 'error':
        if (frame.code === 'UNAUTHENTICATED') {
          needsKey = true;
          storage.removeItem(API_KEY);
          status('needs-key', { message: frame.message });
        }
        if (frame.replyTo) {
          const item = outbox.find((entry) => entry.clientMessageId === frame.replyTo);
          if (item && frame.retryable && item.tries < MAX_RETRIES) {
            item.tries += 1;
            saveOutbox();
            const wait = (frame.retryAfterSeconds ?? 2 ** item.tries) * 1000;
            setTimeout(() => outbox.includes(item) && sendQueued(item), wait);
            emit({ ...frame, willRetry: true, retryInMs: wait });
            return;
          }
          settle(frame.replyTo);
        }
        emit(frame);
        return;
      case 'pong':
        return;
      default:
        emit(frame);
    }
  };

  function connect() {
    if (stopped) return;
    ready = false;
    status('connecting', { queued: outbox.length });
    const ws = new WebSocket(options.url);
    socket = ws;
    ws.addEventListener('open', () => {
      const key = storage.getItem(API_KEY);
      lastHeard = Date.now();
      ws.send(JSON.stringify({ type: 'hello', sessionId, lastSeq, ...(key ? { key } : {}) }));
    });
    ws.addEventListener('message', (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      onFrame(frame);
    });
    ws.addEventListener('close', (event) => {
      if (socket !== ws) return;
      socket = null;
      ready = false;
      if (event.code === 4401) {
        needsKey = true;
        status('needs-key');
        return;
      }
      scheduleReconnect();
    });
  }

  // A heartbeat: a silent socket (a sleeping laptop, a dropped network) is closed and reopened.
  heartbeat = setInterval(() => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    if (Date.now() - lastHeard > 45_000) {
      socket.close();
      return;
    }
    sendFrame({ type: 'ping' });
  }, 20_000);

  const reconnectNow = () => {
    if (socket || stopped || needsKey) return;
    clearTimeout(timer);
    timer = null;
    connect();
  };
  window.addEventListener('online', reconnectNow);

  connect();

  return {
    sessionId,
    /** Messages not answered yet, oldest first (shown as pending after a reload). */
    get pending() {
      return outbox.map((item) => ({ ...item }));
    },
    get connected() {
      return ready;
    },
    /** Queues a message and sends it now when connected; returns its clientMessageId. */
    send(text) {
      const item = { clientMessageId: randomId(12), text, tries: 0 };
      outbox.push(item);
      saveOutbox();
      sendQueued(item);
      if (!ready) status(needsKey ? 'needs-key' : 'offline', { queued: outbox.length });
      return item.clientMessageId;
    },
    /** Stores an API key and reconnects with it. */
    useKey(key) {
      storage.setItem(API_KEY, key);
      needsKey = false;
      attempt = 0;
      if (socket) socket.close();
      else reconnectNow();
    },
    /** Closes the socket and stops reconnecting. */
    close() {
      stopped = true;
      clearTimeout(timer);
      clearInterval(heartbeat);
      window.removeEventListener('online', reconnectNow);
      socket?.close();
    },
  };
}

/** Reads `?key=` from the page address into storage and removes it from the address bar. */
export function takeKeyFromAddress(storage = localStorage) {
  const url = new URL(location.href);
  const key = url.searchParams.get('key');
  if (!key) return;
  storage.setItem(API_KEY, key);
  url.searchParams.delete('key');
  history.replaceState(null, '', url.pathname + url.search + url.hash);
}
