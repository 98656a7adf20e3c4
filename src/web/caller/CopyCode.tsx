// An activation code shown the way people read it out (ABCD-EFGH-JK2V), with a button that copies it.
import { useState } from 'react';
import { formatCode } from '../../shared/activation-code.ts';

export function CopyCode({ code, label }: { code: string; label: string }) {
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  const display = formatCode(code);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(display);
      setCopied('yes');
    } catch {
      setCopied('failed');
    }
  };
  return (
    <div className="copy-code">
      <p><span className="visually-hidden">{label}: </span><span className="code big-code">{display}</span></p>
      <button type="button" className="secondary" onClick={() => void copy()}>
        Copy code<span className="visually-hidden"> {display}</span>
      </button>
      <span role="status" className="muted">
        {copied === 'yes' && 'Copied.'}
        {copied === 'failed' && 'Could not copy here: select the code and copy it yourself.'}
      </span>
    </div>
  );
}
