// ANCHOR: bootstrap
import { provideHttpClient, withInterceptors } from '@angular/common/http';
import { bootstrapApplication } from '@angular/platform-browser';

import { API_BASE, apiBaseFrom } from './app/api';
import { App } from './app/app';
import { basicAuthInterceptor } from './app/basic-auth';

bootstrapApplication(App, {
  providers: [
    // `?api=https://localhost:PORT` picks another API at start-up, without a rebuild.
    { provide: API_BASE, useValue: apiBaseFrom(location.search) },
    provideHttpClient(withInterceptors([basicAuthInterceptor])),
  ],
}).catch((error: unknown) => {
  // A refused `?api=` lands here too: say so on the page, not only in the console.
  document.body.textContent = String(error);
  console.error(error);
});
// ANCHOR_END: bootstrap
