import { afterEach, describe, expect, it } from 'vitest';
import { createCallContext } from '../../../src/core/context.ts';
import { createSkillHost } from '../../../src/skills/host.ts';
import inventory, { findItem, wordsOf } from './index.ts';

const host = createSkillHost({ skills: [inventory] });
const call = (tool: string, args: unknown) =>
  host.handlers.invoke({ skill: 'inventory', tool, arguments: args }, createCallContext());

afterEach(() => {
  delete process.env.STORE_API_KEY;
});

describe('inventory skill', () => {
  it('declares its tools as the design says', () => {
    expect(inventory).toMatchObject({ name: 'inventory', version: '1.0.0', secrets: ['STORE_API_KEY'] });
    expect(inventory.tools.lookupStock.description).toBe('How many units of an item are in stock');
    expect(inventory.tools.listItems.description).toBe('List the items in the store catalogue');
  });

  it('looks up stock with the summary the model repeats', async () => {
    const result = await call('lookupStock', { item: 'red shirt' });
    expect(result).toMatchObject({
      ok: true,
      result: { item: 'red shirt', sku: 'SH-RED-01', units: 42, summary: 'red shirt: 42 units in stock' },
    });
  });

  it.each(['Red Shirts', 'shirts, red', 'how many red shirts do you have in stock?', 'sh-red-01'])(
    'matches %j to the red shirt, ignoring case, plurals and filler',
    (query) => {
      expect(findItem(query)).toMatchObject({ item: { sku: 'SH-RED-01' } });
    },
  );

  it.each([
    ['White Sneakers', 'white sneaker'],
    ['dresses', 'dress'],
    ['boxes', 'box'],
    ['Hoodies', 'hoodie'],
    ['berries', 'berry'],
  ])('reads the plural %j as the singular %j', (plural, singular) => {
    expect(wordsOf(plural)).toEqual(wordsOf(singular));
  });

  it('finds an item by its plural', () => {
    expect(findItem('black hoodies')).toMatchObject({ item: { sku: 'HD-BLK-01' } });
  });

  it('answers an unknown item with found:false and related suggestions', async () => {
    const { result } = await call('lookupStock', { item: 'green shirt' });
    expect(result).toMatchObject({
      item: 'green shirt',
      found: false,
      summary: 'No item matching "green shirt" in the catalogue',
    });
    expect((result as { suggestions: string[] }).suggestions).toEqual(
      expect.arrayContaining(['red shirt', 'blue shirt', 'green cap']),
    );
  });

  it('lists the candidates when the item is ambiguous', async () => {
    const { result } = await call('lookupStock', { item: 'shirt' });
    expect(result).toMatchObject({ found: false, suggestions: ['red shirt', 'blue shirt'] });
    expect((result as { summary: string }).summary).toContain('red shirt (42 units)');
  });

  it('says when an item is out of stock', async () => {
    expect((await call('lookupStock', { item: 'gray hoodie' })).result).toMatchObject({
      summary: 'grey hoodie: out of stock',
    });
  });

  it('refuses an empty item before running', async () => {
    expect(await call('lookupStock', { item: '' })).toMatchObject({
      ok: false,
      error: { code: 'INVALID_ARGUMENT' },
    });
  });

  it('lists the catalogue, optionally by colour', async () => {
    const all = (await call('listItems', {})).result as { count: number; summary: string };
    expect(all.count).toBe(10);
    expect(all.summary).toMatch(/^10 items: red shirt \(42\)/);
    const white = (await call('listItems', { colour: 'White' })).result as { items: { name: string }[] };
    expect(white.items.map((item) => item.name)).toEqual(['white sneakers', 'white socks']);
  });

  it('works without STORE_API_KEY and never reveals the key when it is set', async () => {
    expect((await call('lookupStock', { item: 'blue jeans' })).result).toMatchObject({
      source: 'bundled catalogue',
      storeApiKey: 'not set',
    });
    process.env.STORE_API_KEY = 'sk-very-secret';
    const result = await call('lookupStock', { item: 'blue jeans' });
    expect(result.result).toMatchObject({ storeApiKey: 'configured' });
    expect(JSON.stringify(result)).not.toContain('sk-very-secret');
  });
});
