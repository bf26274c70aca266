import { HttpErrorResponse } from '@angular/common/http';
import { Component, inject, signal } from '@angular/core';

import { API_BASE } from './api';
import { Credentials } from './basic-auth';
import { Delivery, DeliveryService } from './delivery.service';
import { explain } from './explain';

/** What the message area shows: the last call's status and its meaning. */
interface Message {
  /** Counts the calls, so that a test can wait for the answer to its own click. */
  call: number;
  state: 'idle' | 'pending' | 'done';
  kind: 'ok' | 'error' | 'idle';
  status: number | null;
  text: string;
}

@Component({
  selector: 'app-root',
  templateUrl: './app.html',
})
export class App {
  protected readonly api = inject(API_BASE);
  protected readonly origin = location.origin;
  private readonly deliveries = inject(DeliveryService);
  private readonly credentials = inject(Credentials);

  protected readonly rows = signal<Delivery[]>([]);
  protected readonly message = signal<Message>({
    call: 0,
    state: 'idle',
    kind: 'idle',
    status: null,
    text: 'Enter the credentials and load the deliveries.',
  });

  // ANCHOR: load
  load(user: string, password: string): void {
    this.credentials.logIn(user, password);
    const call = this.start('GET /delivery/all');
    this.deliveries.all().subscribe({
      next: (rows) => {
        this.rows.set(rows);
        this.finish(call, 200, `200 OK: ${rows.length} deliveries.`);
      },
      error: (e: HttpErrorResponse) => {
        this.rows.set([]);
        this.finish(call, e.status, explain(e, this.api));
      },
    });
  }
  // ANCHOR_END: load

  create(reference: string, recipient: string, address: string): void {
    const call = this.start('POST /delivery');
    this.deliveries.create({ reference, recipient, address }).subscribe({
      next: (res) => {
        const created = res.body;
        if (created) {
          this.rows.update((rows) => [...rows, created]);
        }
        const location = res.headers.get('Location');
        this.finish(call, res.status, `${res.status} Created: ${location ?? 'no Location header'}.`);
      },
      error: (e: HttpErrorResponse) => this.finish(call, e.status, explain(e, this.api)),
    });
  }

  private start(what: string): number {
    const call = this.message().call + 1;
    this.message.set({ call, state: 'pending', kind: 'idle', status: null, text: `${what} …` });
    return call;
  }

  private finish(call: number, status: number, text: string): void {
    const kind = status >= 200 && status < 300 ? 'ok' : 'error';
    this.message.set({ call, state: 'done', kind, status, text });
  }
}
