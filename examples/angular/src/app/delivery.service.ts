import { HttpClient, HttpHeaders, HttpResponse } from '@angular/common/http';
import { Injectable, inject } from '@angular/core';
import { Observable } from 'rxjs';

import { API_BASE } from './api';

// ANCHOR: wire
/** A delivery as the API sends it (src/routes/delivery/wire.rs). */
export interface Delivery {
  id: number;
  reference: string;
  recipient: string;
  address: string;
  status: 'pending' | 'in_transit' | 'delivered' | 'cancelled';
  /** RFC 3339, UTC. */
  created_at: string;
  updated_at: string;
}

/** The body of `POST /delivery`; `status` defaults to `pending`. */
export type NewDelivery = Pick<Delivery, 'reference' | 'recipient' | 'address'> &
  Partial<Pick<Delivery, 'status'>>;
// ANCHOR_END: wire

// ANCHOR: service
/**
 * The article's two other headers; the interceptor adds the third, `Authorization`. Together
 * they make the browser send a preflight first (`Authorization`, and `Content-Type:
 * application/json`, are not CORS-safelisted; `Accept` is).
 */
const HEADERS = new HttpHeaders({
  'Content-Type': 'application/json; charset=utf-8',
  Accept: 'application/json, text/plain, */*',
});

@Injectable({ providedIn: 'root' })
export class DeliveryService {
  private readonly http = inject(HttpClient);
  /** Absolute, https, another origin than the page: the call the article made. */
  private readonly api = inject(API_BASE);

  all(): Observable<Delivery[]> {
    return this.http.get<Delivery[]>(`${this.api}/delivery/all`, { headers: HEADERS });
  }

  /** The whole response: its `Location` header is readable because the API exposes it. */
  create(delivery: NewDelivery): Observable<HttpResponse<Delivery>> {
    return this.http.post<Delivery>(`${this.api}/delivery`, delivery, {
      headers: HEADERS,
      observe: 'response',
    });
  }
}
// ANCHOR_END: service
