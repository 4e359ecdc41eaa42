/** Saves text as a file the browser downloads (Electron asks where with its save dialog). */
export function downloadText(doc: Document, fileName: string, text: string, type = 'text/plain'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = doc.createElement('a');
  a.href = url;
  a.download = fileName;
  a.click();
  // Revoked once the download has surely read it; revoking at once can cancel it in some browsers.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
