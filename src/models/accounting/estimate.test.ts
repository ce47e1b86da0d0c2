import { describe, expect, it } from 'vitest';
import { estimateUsage } from './estimate.ts';

describe('estimateUsage', () => {
  it('counts an image as an image, not by the length of its data URL', () => {
    const text = { role: 'user' as const, content: 'what is this?' };
    const plain = estimateUsage({ messages: [text] }, 0).inputTokens;
    const withImages = estimateUsage(
      {
        messages: [
          {
            ...text,
            parts: [
              { type: 'text', text: 'what is this?' },
              { type: 'image', url: `data:image/png;base64,${'A'.repeat(400_000)}` },
              { type: 'image', url: 'https://example.com/a.png', detail: 'low' },
            ],
          },
        ],
      },
      0,
    ).inputTokens;
    expect(withImages - plain).toBe(765 + 85);
  });
});
