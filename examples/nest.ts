/**
 * The cache with NestJS on its Express adapter: Nest runs on an Express instance you create,
 * and `http.createServer(cache.wrap(server))` answers hits before Express or Nest run at all.
 * (`app.use(cache.middleware())` also works, like any Express middleware, but every hit then
 * pays for Express's and Nest's request handling.) Decorators are applied as plain calls so
 * the example runs without a decorator compile step; in a Nest project write `@Controller`,
 * `@Get` and `@Header` as usual.
 *   npx tsx examples/nest.ts [--check]
 */
import 'reflect-metadata';
import http from 'node:http';
import { Controller, Get, Header, Module, Param } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import express from 'express';
import { createCache } from 'stratacache';

const cache = createCache();
let renders = 0;

class ProductsController {
  find(id: string) {
    renders++;
    return { id, renderedAt: new Date().toISOString() };
  }
}
// @Controller('products') with @Get(':id') @Header('cache-control', 'public, max-age=60') find(@Param('id') id)
const find = Object.getOwnPropertyDescriptor(ProductsController.prototype, 'find')!;
Param('id')(ProductsController.prototype, 'find', 0);
Header('cache-control', 'public, max-age=60')(ProductsController.prototype, 'find', find);
Get(':id')(ProductsController.prototype, 'find', find);
Controller('products')(ProductsController);
class AppModule {}
Module({ controllers: [ProductsController] })(AppModule);

const server = express();
const app = await NestFactory.create(AppModule, new ExpressAdapter(server), { logger: false });
await app.init();
const httpServer = http.createServer(cache.wrap(server));

const check = process.argv.includes('--check');
httpServer.listen(check ? 0 : Number(process.env.PORT ?? 3000), '127.0.0.1', async () => {
  const { port } = httpServer.address() as { port: number };
  console.log(`nest example on http://127.0.0.1:${port}/products/42`);
  if (!check) return;
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/products/42`);
    console.log(res.status, res.headers.get('x-cache'), await res.text());
  }
  console.log(`renders: ${renders}`);
  httpServer.close();
  await app.close();
  await cache.close();
});
