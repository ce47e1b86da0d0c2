// The web chat page: renders the conversation from the connection's frames. Stored messages
// (with a seq) sit in seq order; messages still running (no seq yet) follow, in the order sent.
import { createChatConnection, takeKeyFromAddress } from './connection.js';

const transcript = document.getElementById('transcript');
const scroller = document.querySelector('main');
const empty = document.getElementById('empty');
const statusEl = document.getElementById('status');
const statusText = document.getElementById('status-text');
const composer = document.getElementById('composer');
const input = document.getElementById('input');
const keyForm = document.getElementById('key-form');
const keyInput = document.getElementById('key-input');

/** @type {Map<number, HTMLLIElement>} */
const bySeq = new Map();
/** @type {Map<string, HTMLLIElement>} user messages by clientMessageId */
const userById = new Map();
/** @type {Map<string, HTMLLIElement>} replies by the clientMessageId they answer */
const replyById = new Map();

function bubble(role) {
  const li = document.createElement('li');
  li.className = `message ${role}`;
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = role === 'user' ? 'You' : 'Agent';
  const text = document.createElement('div');
  text.className = 'text';
  const note = document.createElement('p');
  note.className = 'note';
  li.append(who, text, note);
  return li;
}

const textOf = (li) => li.querySelector('.text');
const noteOf = (li) => li.querySelector('.note');

/** Puts an element with a seq before the first one with a greater seq or without one. */
function place(li, seq) {
  if (seq === undefined) {
    if (!li.isConnected) transcript.append(li);
    return;
  }
  li.dataset.seq = String(seq);
  for (const child of transcript.children) {
    if (child === li) continue;
    if (child.dataset.seq === undefined || Number(child.dataset.seq) > seq) {
      transcript.insertBefore(li, child);
      return;
    }
  }
  transcript.append(li);
}

function setUserState(li, state, message = '') {
  li.dataset.state = state;
  const labels = { queued: 'Queued — will be sent when connected', retrying: message, failed: message };
  noteOf(li).textContent = labels[state] ?? '';
}

/** Keeps the newest message in view when the reader is at the bottom. */
function follow(update) {
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
  update();
  empty.hidden = transcript.children.length > 0;
  if (atBottom) scroller.scrollTop = scroller.scrollHeight;
}

function onUser(frame) {
  const { seq, clientMessageId: id } = frame;
  const existing = seq !== undefined ? bySeq.get(seq) : undefined;
  const mine = id ? userById.get(id) : undefined;
  if (existing) {
    if (mine && mine !== existing) mine.remove();
    if (id) userById.set(id, existing);
    return;
  }
  const li = mine ?? bubble('user');
  textOf(li).textContent = frame.text;
  if (id) userById.set(id, li);
  if (li.dataset.state === 'queued') setUserState(li, 'sent');
  if (seq !== undefined) bySeq.set(seq, li);
  place(li, seq);
}

function streamingReply(id) {
  let li = replyById.get(id);
  if (!li) {
    li = bubble('assistant');
    li.dataset.replyTo = id;
    li.setAttribute('aria-busy', 'true');
    replyById.set(id, li);
    const user = userById.get(id);
    if (user?.isConnected) user.after(li);
    else transcript.append(li);
  }
  return li;
}

function onDelta(frame) {
  const li = streamingReply(frame.replyTo);
  if (li.dataset.done) return;
  textOf(li).textContent += frame.text;
}

function onReply(frame) {
  const { seq, replyTo: id } = frame;
  const existing = seq !== undefined ? bySeq.get(seq) : undefined;
  const streaming = id ? replyById.get(id) : undefined;
  if (existing) {
    if (streaming && streaming !== existing) streaming.remove();
    if (id) replyById.set(id, existing);
    return;
  }
  const li = streaming ?? bubble('assistant');
  li.dataset.done = 'true';
  li.removeAttribute('aria-busy');
  if (id) {
    li.dataset.replyTo = id;
    replyById.set(id, li);
    const user = userById.get(id);
    if (user) setUserState(user, 'done');
  }
  const dropped = frame.dropped || frame.text === '';
  textOf(li).textContent = dropped ? '(no reply)' : frame.text;
  li.classList.toggle('dropped', Boolean(dropped));
  const tools = (frame.toolCalls ?? []).map(
    (call) => `${call.skill}.${call.tool}${call.ok ? '' : ' (failed)'}`,
  );
  noteOf(li).textContent = tools.length ? `Used ${tools.join(', ')}` : '';
  if (seq !== undefined) bySeq.set(seq, li);
  if (!li.isConnected) {
    const user = id ? userById.get(id) : undefined;
    if (seq === undefined && user?.isConnected) user.after(li);
    else place(li, seq);
  } else if (seq !== undefined) {
    place(li, seq);
  }
}

function onError(frame) {
  if (!frame.replyTo) {
    showStatus(statusEl.dataset.state, frame.message);
    return;
  }
  const user = userById.get(frame.replyTo);
  if (frame.willRetry) {
    if (user)
      setUserState(user, 'retrying', `${frame.message} — retrying in ${Math.ceil(frame.retryInMs / 1000)} s`);
    return;
  }
  if (user) setUserState(user, 'failed', `Not answered: ${frame.message}`);
  const streaming = replyById.get(frame.replyTo);
  if (streaming && !streaming.dataset.done) {
    streaming.remove();
    replyById.delete(frame.replyTo);
  }
}

function onReady(frame) {
  if (frame.reset) {
    transcript.replaceChildren();
    bySeq.clear();
    userById.clear();
    replyById.clear();
    for (const item of chat.pending) addPending(item.clientMessageId, item.text);
  }
  // Unfinished replies are streamed again from the start for turns still running.
  for (const [id, li] of replyById) {
    if (li.dataset.done) continue;
    li.remove();
    replyById.delete(id);
  }
}

function showStatus(state, text) {
  statusEl.dataset.state = state;
  statusText.textContent = text;
}

function onStatus(event) {
  const queued = event.queued ? ` — ${event.queued} message${event.queued === 1 ? '' : 's'} queued` : '';
  switch (event.state) {
    case 'online':
      keyForm.hidden = true;
      showStatus('online', 'Connected');
      break;
    case 'connecting':
      showStatus('connecting', `Connecting…${queued}`);
      break;
    case 'offline':
      showStatus(
        'offline',
        event.retryInMs !== undefined
          ? `Offline — reconnecting in ${Math.max(1, Math.round(event.retryInMs / 1000))} s${queued}`
          : `Offline — reconnecting…${queued}`,
      );
      break;
    case 'needs-key':
      keyForm.hidden = false;
      showStatus('needs-key', event.message ?? 'An API key is needed');
      break;
  }
}

function addPending(id, text) {
  const li = bubble('user');
  textOf(li).textContent = text;
  userById.set(id, li);
  transcript.append(li);
  setUserState(li, chat?.connected ? 'sent' : 'queued');
}

takeKeyFromAddress();
const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/webchat/ws`;
const chat = createChatConnection({
  url,
  onEvent(event) {
    follow(() => {
      switch (event.type) {
        case 'status':
          return onStatus(event);
        case 'ready':
          return onReady(event);
        case 'user':
          return onUser(event);
        case 'delta':
          return onDelta(event);
        case 'reply':
          return onReply(event);
        case 'ack': {
          const li = userById.get(event.clientMessageId);
          if (li && li.dataset.state !== 'done') setUserState(li, 'sent');
          return;
        }
        case 'error':
          return onError(event);
      }
    });
  },
});
follow(() => {
  for (const item of chat.pending) addPending(item.clientMessageId, item.text);
});

composer.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = input.value;
  if (!text.trim()) return;
  const id = chat.send(text);
  follow(() => addPending(id, text));
  input.value = '';
  input.style.height = '';
  input.focus();
});

input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});

input.addEventListener('input', () => {
  input.style.height = '';
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
});

keyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!keyInput.value) return;
  chat.useKey(keyInput.value);
  keyInput.value = '';
  keyForm.hidden = true;
});

input.focus();
