import { describe, expect, it } from 'vitest';
import { connectionErrorMessage } from './sdk-timeout.ts';

describe('connectionErrorMessage', () => {
  it('keeps the reason but not the credentials of the URL it names', () => {
    const cause = new Error(
      'request to http://user:pw-secret@127.0.0.1:1/v1/chat/completions failed, reason: connect ECONNREFUSED 127.0.0.1:1',
    );
    const message = connectionErrorMessage(
      'openai',
      Object.assign(new Error('Connection error.'), { cause }),
    );
    expect(message).toBe(
      'openai: Connection error. request to http://***@127.0.0.1:1/v1/chat/completions failed, reason: connect ECONNREFUSED 127.0.0.1:1',
    );
    expect(message).not.toContain('pw-secret');
  });

  it('leaves a message without credentials as it is', () => {
    const cause = new Error(
      'request to https://api.openai.com/v1/chat/completions failed, reason: socket hang up',
    );
    expect(connectionErrorMessage('openai', Object.assign(new Error('Connection error.'), { cause }))).toBe(
      'openai: Connection error. request to https://api.openai.com/v1/chat/completions failed, reason: socket hang up',
    );
  });
});
