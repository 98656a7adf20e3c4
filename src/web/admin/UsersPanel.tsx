// Every user billing knows, a page at a time, with their balance; choosing one (or typing any user id) opens
// their report below, where time is granted.
import { useEffect, useRef, useState } from 'react';
import { useApi } from '../auth.tsx';
import { formatDateTime, formatDuration, formatMoney } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { Loaded, Section, TableScroll } from '../ui.tsx';
import { BillingUserList } from '../../shared/admin-contracts.ts';
import { UserLookup } from './UserLookup.tsx';
import { UserReport } from './UserReport.tsx';

const PAGE_SIZE = 20;

export function UsersPanel() {
  const api = useApi();
  const [offset, setOffset] = useState(0);
  const [selected, setSelected] = useState<string | null>(null);
  const request = useRequest(() => api.get(`/admin/users?limit=${PAGE_SIZE}&offset=${offset}`, BillingUserList), [offset]);
  // Paging disables the button that was pressed on the last page: the focus goes to where the new page
  // starts (its position line) instead of falling to the page's body.
  const position = useRef<HTMLParagraphElement>(null);
  const paged = useRef(false);
  const page = (next: number) => {
    paged.current = true;
    setOffset(next);
  };
  useEffect(() => {
    if (paged.current && request.status === 'ok') {
      paged.current = false;
      position.current?.focus();
    }
  }, [request.status, request.data]);
  return (
    <Section title="Users" id="users"
      actions={<button type="button" className="secondary" onClick={() => void request.reload()}>Refresh users</button>}>
      <UserLookup onOpen={setSelected} />
      <Loaded request={request} label="Loading users…">
        {(list) => (
          <>
            <p className="muted" ref={position} tabIndex={-1}>
              {list.total_users === 0 ? 'No users yet.'
                : `Users ${list.offset + 1}–${list.offset + list.users.length} of ${list.total_users}, most recently active first. Choose a user id to open their report.`}
            </p>
            {list.users.length > 0 && (
              <TableScroll label="Users">
                <table className="compact" aria-label="Users">
                  <thead>
                    <tr>
                      <th scope="col">User</th>
                      <th scope="col" className="num">Balance</th>
                      <th scope="col" className="num">Active cards</th>
                      <th scope="col" className="num">Calls</th>
                      <th scope="col" className="num">Spent</th>
                      <th scope="col">Last activity</th>
                    </tr>
                  </thead>
                  <tbody>
                    {list.users.map((u) => (
                      <tr key={u.user_id} className={u.user_id === selected ? 'selected' : undefined}>
                        <th scope="row">
                          <button type="button" className="link user-id" aria-expanded={u.user_id === selected}
                            aria-controls={u.user_id === selected ? 'user-report' : undefined}
                            onClick={() => setSelected(u.user_id === selected ? null : u.user_id)}>
                            {u.user_id}
                          </button>
                        </th>
                        <td className="num">{formatDuration(u.balance_seconds)}</td>
                        <td className="num">{u.active_cards}</td>
                        <td className="num">{u.sessions}</td>
                        <td className="num">{u.spent.length === 0 ? formatMoney(0)
                          : u.spent.map((m) => formatMoney(m.cents, m.currency)).join(' + ')}</td>
                        <td>{formatDateTime(u.last_activity)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableScroll>
            )}
            {list.total_users > list.limit && (
              <div className="actions">
                <button type="button" className="secondary" disabled={offset === 0}
                  onClick={() => page(Math.max(0, offset - PAGE_SIZE))}>Previous page</button>
                <button type="button" className="secondary" disabled={list.offset + list.users.length >= list.total_users}
                  onClick={() => page(offset + PAGE_SIZE)}>Next page</button>
              </div>
            )}
          </>
        )}
      </Loaded>
      {selected && <UserReport userId={selected} onChanged={() => void request.reload()} onClose={() => setSelected(null)} />}
    </Section>
  );
}
