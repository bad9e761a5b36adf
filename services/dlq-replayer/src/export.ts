/** Export of dead letters: JSON Lines exactly as the API lists them, or CSV for spreadsheets. Pure. */

export const CSV_COLUMNS = ['id', 'sourceTopic', 'sourcePartition', 'sourceOffset', 'key', 'keyBase64', 'errorCode', 'errorMessage', 'stage', 'failedAt', 'status', 'replayCount', 'headers'] as const;

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break. A value a
 * spreadsheet would run as a formula (it starts with =, +, -, @, a tab or a carriage return) gets a
 * leading apostrophe: a dead letter's key or message is data, never a formula. JSON Lines keep every
 * value exact.
 */
export function csvField(value: unknown): string {
  let text = value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvRow(values: unknown[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}

export function csvHeader(withPayload: boolean): string {
  return csvRow([...CSV_COLUMNS, ...(withPayload ? ['valueBase64'] : [])]);
}

export function csvLine(row: Record<string, unknown>, withPayload: boolean): string {
  return csvRow([...CSV_COLUMNS.map((c) => row[c]), ...(withPayload ? [row.valueBase64] : [])]);
}
