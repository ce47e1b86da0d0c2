/** One item of the store catalogue. */
export interface CatalogueItem {
  readonly sku: string;
  /** What customers call it: `red shirt`. */
  readonly name: string;
  readonly colour: string;
  /** Units in stock. */
  readonly units: number;
  /** Price in euros. */
  readonly price: number;
}

/** The catalogue bundled with the example, so the skill works with no store behind it. */
export const CATALOGUE: readonly CatalogueItem[] = Object.freeze([
  { sku: 'SH-RED-01', name: 'red shirt', colour: 'red', units: 42, price: 19.9 },
  { sku: 'SH-BLU-01', name: 'blue shirt', colour: 'blue', units: 17, price: 19.9 },
  { sku: 'HD-BLK-01', name: 'black hoodie', colour: 'black', units: 8, price: 39.0 },
  { sku: 'HD-GRY-01', name: 'grey hoodie', colour: 'grey', units: 0, price: 39.0 },
  { sku: 'SN-WHT-01', name: 'white sneakers', colour: 'white', units: 23, price: 69.0 },
  { sku: 'SN-BLK-01', name: 'black sneakers', colour: 'black', units: 5, price: 69.0 },
  { sku: 'JN-BLU-01', name: 'blue jeans', colour: 'blue', units: 31, price: 49.5 },
  { sku: 'CP-GRN-01', name: 'green cap', colour: 'green', units: 12, price: 14.0 },
  { sku: 'SK-WHT-01', name: 'white socks', colour: 'white', units: 120, price: 4.5 },
  { sku: 'JK-YLW-01', name: 'yellow rain jacket', colour: 'yellow', units: 1, price: 89.0 },
]);
