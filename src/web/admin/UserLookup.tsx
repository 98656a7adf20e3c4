// Opens any user's report by id, typed or pasted: an administrator grants time to a user who has never bought
// or called (so is in no list yet), from a support ticket or the user's own account page.
import { useId, useState, type FormEvent } from 'react';
import { FieldError, invalidProps } from './form-errors.tsx';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The user id in what was typed or pasted (spaces, quotes or braces around it are dropped), or null. */
export function userIdFrom(text: string): string | null {
  const id = text.trim().replace(/^["'{<(]+|["'}>)]+$/g, '').trim();
  return UUID.test(id) ? id.toLowerCase() : null;
}

export function UserLookup({ onOpen }: { onOpen: (userId: string) => void }) {
  const id = useId();
  const [text, setText] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const errors: Record<string, string> = problem ? { userId: problem } : {};

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const userId = userIdFrom(text);
    if (!userId) {
      setProblem('Enter a user id: a UUID such as 123e4567-e89b-12d3-a456-426614174000.');
      return;
    }
    setProblem(null);
    setText(userId);
    onOpen(userId);
  };

  return (
    <form className="lookup" onSubmit={submit} noValidate aria-label="Open a user by id">
      <div className="field">
        <label htmlFor={`${id}-user`}>User id (any user, listed or not)</label>
        <input id={`${id}-user`} type="text" spellCheck={false} autoComplete="off" value={text}
          placeholder="123e4567-e89b-12d3-a456-426614174000"
          onChange={(e) => { setText(e.target.value); setProblem(null); }}
          {...invalidProps(errors, 'userId', `${id}-user`)} />
        <FieldError errors={errors} field="userId" inputId={`${id}-user`} />
      </div>
      <div className="actions">
        <button type="submit" className="secondary">Open report</button>
      </div>
    </form>
  );
}
